// The reference-tool registry itself: PATH lookup, the identity check, hiding,
// the messages a user or CI sees when a tool is missing, and the two guards
// against tests that reach a tool around it (at run time and in the sources).
import { execFile, execFileSync, execSync, spawnSync } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from './emulator.js';
import { guardMessage } from './peer-guard.js';
import {
  aptGetCommand,
  findOnPath,
  needs,
  PEER_NAMES,
  peerPath,
  PEERS,
  peerTagDefinitions,
  probePeers,
  requiredPeersError,
  type PeerProbe,
  type PeerSpec,
} from './peers.js';

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

  it('probes PATH (sbin folders too for admin tools) and checks identity: a wrong version or a stranger of the same name is missing', async () => {
    const bin = path.join(tmp, 'bin');
    const sbin = path.join(tmp, 'sbin');
    script(bin, 'fastboot', 'echo "fastboot version 35.0.2-12147458"');
    script(bin, 'gawk', 'echo "GNU Awk 5.2.1, API 3.2"');
    script(bin, 'simg2img', 'echo "Usage: simg2img <sparse_image_files> <raw_image_file>" >&2; exit 255');
    script(bin, 'simg2simg', 'echo hello');
    script(bin, 'cut', 'echo "cut (GNU coreutils) 9.1"');
    script(bin, 'dash', 'echo "$0: 1: printf: x: expected numeric value" >&2; exit 2');
    script(sbin, 'mke2fs', 'echo "mke2fs 1.47.0 (5-Feb-2023)" >&2; exit 1');
    script(sbin, 'fastboot', 'echo "fastboot version 29.0.6-debian"'); // sbin is for admin tools only
    const probe = await probePeers({ PATH: bin }, { sbinDirs: [sbin] });
    expect(probe.gawk).toEqual({ path: path.join(bin, 'gawk') });
    expect(probe.simg2img).toEqual({ path: path.join(bin, 'simg2img') });
    expect(probe.coreutils).toEqual({ path: path.join(bin, 'cut') }); // a package checked through one command
    expect(probe.dash).toEqual({ path: path.join(bin, 'dash') });
    expect(probe.mke2fs).toEqual({ path: path.join(sbin, 'mke2fs') });
    expect(probe.e2fsck).toEqual({ missing: `not on PATH nor in ${sbin}` });
    expect(probe.img2simg).toEqual({ missing: 'not on PATH' });
    expect((probe.fastboot as { missing: string }).missing).toMatch(/fastboot is not the expected tool .*fastboot version 29\.x.*got "fastboot version 35/);
    expect((probe.simg2simg as { missing: string }).missing).toMatch(/simg2simg is not the expected tool .*got "hello"/);
    expect((await probePeers({ PATH: bin, MIFLASH_PEERS_HIDE: 'gawk' }, { sbinDirs: [sbin] })).gawk).toEqual({ missing: 'hidden by MIFLASH_PEERS_HIDE' });
    const all = await probePeers({ PATH: bin, MIFLASH_PEERS_HIDE: 'all' }, { sbinDirs: [sbin] });
    expect(PEER_NAMES.every((n) => 'missing' in all[n])).toBe(true);
  });

  it('a tool that hangs on its check is missing, not a hung run', async () => {
    const bin = path.join(tmp, 'hang');
    script(bin, 'gawk', 'exec sleep 60');
    const probe = await probePeers({ PATH: bin }, { sbinDirs: [], timeoutMs: 300 });
    expect(probe.gawk).toMatchObject({ missing: expect.stringMatching(/is not the expected tool .*got ""/) });
  });

  it('tags skip exactly the missing peers; needs() names them once each', () => {
    const probe = Object.fromEntries(PEER_NAMES.map((n) => [n, { path: `/x/${n}` }])) as PeerProbe;
    probe.fastboot = { missing: 'not on PATH' };
    probe.gawk = { missing: 'not on PATH' };
    const tags = peerTagDefinitions(probe);
    expect(tags.map((t) => t.name)).toEqual(PEER_NAMES.map((n) => `peer:${n}`));
    expect(tags.filter((t) => t.skip).map((t) => t.name)).toEqual(['peer:fastboot', 'peer:gawk']);
    // No `skip: false`: merged with a missing peer's tag on the same test, it would win.
    expect(tags.filter((t) => !t.skip).every((t) => !('skip' in t))).toBe(true);
    expect(needs('fastboot', 'img2simg', 'fastboot')).toEqual({ tags: ['peer:fastboot', 'peer:img2simg'] });
  });

  it('one apt-get install per package; the CI error lists each missing tool and the command', () => {
    expect(aptGetCommand(['img2simg', 'simg2img', 'fastboot', 'simg2simg', 'mke2fs', 'e2fsck'])).toBe('sudo apt-get install -y android-sdk-libsparse-utils fastboot e2fsprogs');
    const probe = Object.fromEntries(PEER_NAMES.map((n) => [n, { path: `/x/${n}` }])) as PeerProbe;
    expect(requiredPeersError(probe)).toBeNull();
    probe.img2simg = { missing: 'not on PATH' };
    probe['mkfs.f2fs'] = { missing: 'not on PATH nor in /usr/sbin' };
    const message = requiredPeersError(probe)!;
    expect(message).toMatch(/^MIFLASH_REQUIRE_PEERS=1: 2 reference tool\(s\) missing/);
    expect(message).toContain('\n  img2simg: not on PATH\n  mkfs.f2fs: not on PATH nor in /usr/sbin\n');
    expect(message).toMatch(/\nInstall: sudo apt-get install -y android-sdk-libsparse-utils f2fs-tools$/);
  });

  it(".ci/run installs every registered tool's package, in one apt-get line", () => {
    const ci = readFileSync(path.join(REPO_ROOT, '.ci/run'), 'utf8');
    const lines = ci.split('\n').filter((l) => /^\s*apt-get install\b/.test(l));
    expect(lines).toHaveLength(1);
    const installed = new Set(lines[0]!.split(/\s+/));
    expect(PEER_NAMES.map((n) => PEERS[n].debPackage).filter((p) => !installed.has(p))).toEqual([]);
    expect(ci).toMatch(/^export MIFLASH_REQUIRE_PEERS=1$/m);
  });
});

describe('peer guard (test/helpers/peer-guard.ts)', () => {
  it('refuses a registered tool, by name or path, in a test not marked needs(tool), or anywhere when hidden', () => {
    const none = new Set<string>();
    expect(guardMessage('/usr/bin/fastboot', [], none)).toMatch(/runs the reference tool fastboot but is not marked needs\('fastboot'\)/);
    expect(guardMessage('cut', ['peer:gawk'], none)).toMatch(/reference tool coreutils .*needs\('coreutils'\)/);
    expect(guardMessage('fastboot', ['peer:fastboot'], none)).toBeNull();
    expect(guardMessage('/sbin/mkfs.f2fs', undefined, none)).toBeNull(); // outside a test (a hook): only hiding is checked
    expect(guardMessage('/sbin/mkfs.f2fs', undefined, new Set(['mkfs.f2fs']))).toMatch(/mkfs\.f2fs is hidden by MIFLASH_PEERS_HIDE/);
    expect(guardMessage(process.execPath, [], none)).toBeNull();
    expect(guardMessage('sh', [], none)).toBeNull();
  });

  it('is installed in every worker: an unmarked test cannot start a registered tool', () => {
    // (With MIFLASH_PEERS_HIDE the message says the tool is hidden; both name the needs() to add.)
    expect(() => spawnSync('gawk', ['--version'])).toThrow(/needs\('gawk'\)/);
    expect(() => execFileSync('/usr/bin/simg2img', [])).toThrow(/needs\('simg2img'\)/);
    expect(() => execSync('bash -c true')).toThrow(/needs\('bash'\)/);
  });

  it('leaves other commands alone, promisify(execFile) included', async () => {
    expect(spawnSync(process.execPath, ['-e', 'process.stdout.write("x")'], { encoding: 'utf8' }).stdout).toBe('x');
    await expect(promisify(execFile)(process.execPath, ['-e', 'console.log(1); console.error(2)'])).resolves.toEqual({ stdout: '1\n', stderr: '2\n' });
  });

  it('lets a marked test run the tool', needs('bash'), () => {
    expect(spawnSync(peerPath('bash'), ['-c', 'echo ok'], { encoding: 'utf8' }).stdout).toBe('ok\n');
  });
});

/** Every .ts file under test/. */
function testSources(dir = path.join(REPO_ROOT, 'test')): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? testSources(path.join(dir, e.name)) : e.name.endsWith('.ts') ? [path.join(dir, e.name)] : [],
  );
}

const REGISTRY_FILES = ['peers.ts', 'peers.test.ts', 'peer-guard.ts', 'peers-reporter.ts'].map((f) => path.join(REPO_ROOT, 'test/helpers', f));

describe('tests reach reference tools only through the registry', () => {
  it('the source check flags literal spawns, tool paths and hand-made presence checks', () => {
    const bad = [
      "execFileSync('img2simg', [raw, out]);",
      'const child = spawn("fastboot", args);',
      "await run('/usr/bin/fastboot', ['devices']);".replace('run', 'execFile'),
      "const MKBOOTIMG = '/usr/bin/mkbootimg';",
      "fsckOk('/sbin/e2fsck', file)",
      "execSync('mkfs.f2fs -f x.img')",
      "const HAVE_FASTBOOT = existsSync(AOSP_FASTBOOT);",
      "describe.skipIf(!HAVE_MKFS)('format', () => {",
      "it.runIf(ok)('x', () => {})",
      "spawnSync('sh', ['-c', 'command -v gawk'])",
      "const peer = hasPeer('grep');",
    ];
    expect(bad.filter((l) => !registryBypass(l))).toEqual([]);
    const good = [
      "execFileSync(peerPath('img2simg'), [raw, out]);",
      "describe('parity', needs('fastboot'), () => {",
      "spawn(process.execPath, [bin, 'emulate']);",
      "execFileSync('tar', ['-czf', tgz]);",
      "expect(r.stderr).toMatch(/fastboot: usage/);",
      "it.skipIf(process.platform === 'win32')('unix sockets', () => {",
    ];
    expect(good.filter(registryBypass)).toEqual([]);
  });

  it('no test source reaches a registered tool outside the registry', () => {
    const bad: string[] = [];
    for (const file of testSources().filter((f) => !REGISTRY_FILES.includes(f))) {
      readFileSync(file, 'utf8').split('\n').forEach((line, i) => {
        if (registryBypass(line)) bad.push(`${path.relative(REPO_ROOT, file)}:${i + 1}: ${line.trim()}`);
      });
    }
    expect(bad, 'mark the test needs(tool) and start the tool with peerPath(tool) (test/helpers/peers.ts)').toEqual([]);
  });
});

const COMMANDS = PEER_NAMES.map((n) => ((PEERS[n] as PeerSpec).command ?? n).replace(/\./g, '\\.')).join('|');
/** A spawn/exec whose program is a literal registered tool (by name or path). */
const LITERAL_SPAWN = new RegExp(`\\b(spawn|spawnSync|execFile|execFileSync|execFileAsync|execSync|exec)\\(\\s*['"\`]([^'"\`\\s]*/)?(${COMMANDS})['"\`\\s]`);
/** A registered tool's absolute path written out. */
const TOOL_PATH = new RegExp(`['"\`](/usr)?(/local)?/s?bin/(${COMMANDS})['"\`]`);
/** Hand-made presence checks: they skip silently, even on CI, or not at all. */
const PRESENCE_CHECK = /['\"`]\s*(command\s+-v|which)\s|\bhasPeer\(|\bisTool\(|AOSP_FASTBOOT|\bHAVE_[A-Z_]+\b|\.(skipIf|runIf)\((?!process\.platform)/;

function registryBypass(line: string): boolean {
  return LITERAL_SPAWN.test(line) || TOOL_PATH.test(line) || PRESENCE_CHECK.test(line);
}
