// The reference-tool registry itself: PATH lookup, the identity check, hiding,
// and the messages a user or CI sees when a tool is missing.
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { aptGetCommand, findOnPath, needs, PEER_NAMES, PEERS, peerTagDefinitions, probePeers, requiredPeersError } from './peers.js';

const tmp = mkdtempSync(path.join(os.tmpdir(), 'miflash-peers-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function script(dir: string, name: string, body: string, mode = 0o755): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, name), `#!/bin/sh\n${body}\n`);
  chmodSync(path.join(dir, name), mode);
}

describe('peer registry', () => {
  it('findOnPath takes the first executable regular file, like command -v', () => {
    const a = path.join(tmp, 'a');
    const b = path.join(tmp, 'b');
    const c = path.join(tmp, 'c');
    script(a, 'tool', 'exit 0', 0o644); // not executable
    mkdirSync(path.join(b, 'tool'), { recursive: true }); // a directory
    script(c, 'tool', 'exit 0');
    expect(findOnPath('tool', [a, '', b, c].join(path.delimiter))).toBe(path.join(c, 'tool'));
    expect(findOnPath('tool', [a, b].join(path.delimiter))).toBeNull();
  });

  it('probes PATH and checks identity: a wrong fastboot version or a stranger of the same name is missing', () => {
    const bin = path.join(tmp, 'bin');
    script(bin, 'fastboot', 'echo "fastboot version 35.0.2-12147458"');
    script(bin, 'gawk', 'echo "GNU Awk 5.2.1, API 3.2"');
    script(bin, 'simg2img', 'echo "Usage: simg2img <sparse_image_files> <raw_image_file>" >&2; exit 255');
    script(bin, 'simg2simg', 'echo hello');
    const probe = probePeers({ PATH: bin });
    expect(probe.gawk).toEqual({ path: path.join(bin, 'gawk') });
    expect(probe.simg2img).toEqual({ path: path.join(bin, 'simg2img') });
    expect(probe.img2simg).toEqual({ missing: 'not on PATH' });
    expect((probe.fastboot as { missing: string }).missing).toMatch(/fastboot is not the expected tool .*fastboot version 29\.x.*got "fastboot version 35/);
    expect((probe.simg2simg as { missing: string }).missing).toMatch(/simg2simg is not the expected tool .*got "hello"/);
    expect(probePeers({ PATH: bin, MIFLASH_PEERS_HIDE: 'gawk' }).gawk).toEqual({ missing: 'hidden by MIFLASH_PEERS_HIDE' });
    const all = probePeers({ PATH: bin, MIFLASH_PEERS_HIDE: 'all' });
    expect(PEER_NAMES.every((n) => 'missing' in all[n])).toBe(true);
  });

  it('tags skip exactly the missing peers; needs() names them', () => {
    const probe = probePeers({ PATH: path.join(tmp, 'bin') });
    const tags = peerTagDefinitions(probe);
    expect(tags.filter((t) => t.skip).map((t) => t.name)).toEqual(['peer:fastboot', 'peer:img2simg', 'peer:simg2simg']);
    // No `skip: false`: merged with a missing peer's tag on the same test, it would win.
    expect(tags.filter((t) => !t.skip).every((t) => !('skip' in t))).toBe(true);
    expect(needs('fastboot', 'img2simg')).toEqual({ tags: ['peer:fastboot', 'peer:img2simg'] });
  });

  it('one apt-get install per package; the CI error lists each missing tool and the command', () => {
    expect(aptGetCommand(['img2simg', 'simg2img', 'fastboot', 'simg2simg'])).toBe('sudo apt-get install -y android-sdk-libsparse-utils fastboot');
    const probe = probePeers({ PATH: path.join(tmp, 'bin') });
    const message = requiredPeersError(probe)!;
    expect(message).toMatch(/^MIFLASH_REQUIRE_PEERS=1: 3 reference tool\(s\) missing/);
    expect(message).toContain('  img2simg: not on PATH');
    expect(message).toMatch(/\nInstall: sudo apt-get install -y fastboot android-sdk-libsparse-utils$/);
    const present = Object.fromEntries(PEER_NAMES.map((n) => [n, { path: `/x/${n}` }])) as ReturnType<typeof probePeers>;
    expect(requiredPeersError(present)).toBeNull();
  });
});

/** Every .ts file under test/. */
function testSources(dir = path.resolve(import.meta.dirname, '..')): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? testSources(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : [],
  );
}

describe('tests reach reference tools only through the registry', () => {
  it('no test spawns a registered tool by literal name or path, or checks for it with existsSync', () => {
    // A literal spawn dodges the up-front probe: without the tool it fails or times out instead of
    // skipping; a hand-made existsSync check skips silently, even on CI.
    const names = Object.keys(PEERS).join('|');
    const literal = new RegExp(`\\b(spawn|spawnSync|execFile|execFileSync|execFileAsync|execSync|exec)\\(\\s*['"\`](/usr/bin/)?(${names})\\b`);
    const bad: string[] = [];
    for (const file of testSources().filter((f) => f !== import.meta.filename)) {
      const text = readFileSync(file, 'utf8');
      text.split('\n').forEach((line, i) => {
        if (literal.test(line) || /AOSP_FASTBOOT|existsSync\(['"]\/usr\/bin\//.test(line)) bad.push(`${path.relative(process.cwd(), file)}:${i + 1}: ${line.trim()}`);
      });
    }
    expect(bad, 'use peerPath(name) inside a test marked needs(name)').toEqual([]);
  });
});
