// A small scripted phone for the bootloader -> fastbootd flow, until the
// emulator grows fastbootd: it answers getvar from a table (is-userspace and
// is-logical follow its mode and partition set), takes downloads, and records
// every command. `reboot-fastboot` switches it to userspace and drops the
// link; `connect()` opens the next link (an in-memory pair).
import { createHash } from 'node:crypto';
import { FastbootClient } from '../../src/fastboot/client.js';
import { createMemoryTransportPair } from '../../src/transport/memory.js';
import type { Transport } from '../../src/transport/transport.js';

export interface ScriptedPhoneOptions {
  serial?: string;
  slots?: string[];
  /** Logical partitions (full names) fastbootd knows after update-super. */
  logical?: string[];
  vars?: Record<string, string>;
  maxDownloadSize?: number;
}

export class ScriptedPhone {
  userspace = false;
  current: string;
  readonly log: string[] = [];
  private logical = new Set<string>();
  private download: Buffer | undefined;

  constructor(readonly o: ScriptedPhoneOptions = {}) {
    this.current = o.slots?.[0] ?? '';
  }

  /** A new link to the phone (the previous one was dropped by a reboot). */
  async connect(): Promise<FastbootClient> {
    const pair = createMemoryTransportPair();
    void this.serve(pair.device);
    return new FastbootClient(pair.host, { timeoutMs: 2000 });
  }

  private getvar(name: string): string | undefined {
    if (this.o.vars && name in this.o.vars) return this.o.vars[name];
    const slots = this.o.slots ?? [];
    switch (name) {
      case 'serialno':
        return this.o.serial ?? 'SCRIPTED1';
      case 'is-userspace':
        return this.userspace ? 'yes' : 'no';
      case 'max-download-size':
        return `0x${(this.o.maxDownloadSize ?? 0x10000000).toString(16)}`;
      case 'slot-count':
        return slots.length ? String(slots.length) : undefined;
      case 'current-slot':
        return this.current || undefined;
      case 'snapshot-update-status':
        return 'none';
      case 'super-partition-name':
        return this.userspace ? 'super' : undefined;
    }
    const [key, arg] = [name.slice(0, name.indexOf(':')), name.slice(name.indexOf(':') + 1)];
    if (key === 'has-slot') return slots.length && !['super', 'userdata', 'metadata', 'misc'].includes(arg) ? 'yes' : 'no';
    if (key === 'is-logical') return this.userspace && this.logical.has(arg) ? 'yes' : 'no';
    if (key === 'partition-type') return ['userdata', 'metadata'].includes(arg) ? 'raw' : undefined;
    return undefined;
  }

  private async serve(t: Transport): Promise<void> {
    const reply = (s: string) => t.write(Buffer.from(s, 'latin1'));
    for (;;) {
      let packet: Buffer;
      try {
        packet = await t.read(1024 * 1024, { timeoutMs: 60_000 });
      } catch {
        return;
      }
      const cmd = packet.toString('latin1');
      if (cmd.startsWith('download:')) {
        const size = Number.parseInt(cmd.slice(9), 16);
        await reply(`DATA${size.toString(16).padStart(8, '0')}`);
        const chunks: Buffer[] = [];
        let got = 0;
        while (got < size) {
          const c = await t.read(1024 * 1024, { timeoutMs: 5000 });
          chunks.push(c);
          got += c.length;
        }
        this.download = Buffer.concat(chunks);
        this.log.push(`download ${size} ${createHash('sha256').update(this.download).digest('hex')}`);
        await reply('OKAY');
        continue;
      }
      this.log.push(cmd);
      if (cmd.startsWith('getvar:')) {
        const v = this.getvar(cmd.slice(7));
        await reply(v === undefined ? 'FAILGetVar Variable Not found' : `OKAY${v}`);
      } else if (cmd === 'reboot-fastboot' || cmd === 'reboot-bootloader' || cmd === 'reboot') {
        await reply('OKAY');
        this.userspace = cmd === 'reboot-fastboot';
        await t.close();
        return;
      } else if (cmd.startsWith('update-super:')) {
        if (!this.userspace) await reply('FAILunknown command');
        else {
          for (const p of this.o.logical ?? []) this.logical.add(p);
          await reply('OKAY');
        }
      } else if (cmd.startsWith('resize-logical-partition:')) {
        const name = cmd.split(':')[1]!;
        await reply(this.userspace && this.logical.has(name) ? 'OKAY' : 'FAILNot a logical partition');
      } else if (cmd.startsWith('set_active:')) {
        this.current = cmd.slice(11);
        await reply('OKAY');
      } else {
        await reply('OKAY');
      }
    }
  }
}
