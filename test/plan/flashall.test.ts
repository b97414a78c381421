// The AOSP v35 flashall task list as data: table order, boot-critical first,
// update-super between the groups, resize-to-0 of every dynamic partition just
// before the first dynamic flash, secondary images to the other slot,
// fastboot-info.txt lines (version, if-wipe, --slot-other, --apply-vbmeta).
import { describe, expect, it } from 'vitest';
import { BadInputError } from '../../src/errors.js';
import { collectTasks, parseFastbootInfo, shouldFlashInUserspace, type CollectOptions } from '../../src/plan/flashall.js';

const pixelZip = ['boot.img', 'init_boot.img', 'dtbo.img', 'vbmeta.img', 'vbmeta_system.img', 'vendor_boot.img', 'system.img', 'system_ext.img', 'product.img', 'vendor.img', 'vendor_dlkm.img', 'system_other.img', 'super_empty.img', 'android-info.txt', 'radio.img', 'userdata.img'];
const dynamic = ['system_a', 'system_b', 'system_ext_a', 'system_ext_b', 'product_a', 'product_b', 'vendor_a', 'vendor_b', 'vendor_dlkm_a', 'vendor_dlkm_b'].map((name) => ({ name, slotSuffixed: false }));

const base = (o: Partial<CollectOptions> = {}): CollectOptions => ({
  slotOverride: '',
  secondarySlot: 'b',
  skipSecondary: false,
  currentSlot: 'a',
  wantsWipe: false,
  has: (n) => pixelZip.includes(n),
  dynamic,
  ...o,
});

const flat = (o: Partial<CollectOptions> = {}) =>
  collectTasks(base(o)).map((t) => (t.kind === 'flash' ? `flash ${t.partition}${t.slot ? `@${t.slot}` : ''}` : t.kind === 'resize' ? `resize ${t.partition}` : t.kind === 'reboot' ? `reboot ${t.target}` : t.kind === 'wipe' ? `erase ${t.partition}` : t.kind));

describe('image-list flashall (no fastboot-info.txt)', () => {
  it('boot-critical images, update-super, resizes to 0, then OS images — each in table order; extra images (radio, userdata) never', () => {
    expect(flat()).toEqual([
      'flash boot',
      'flash init_boot',
      'flash dtbo',
      'flash vbmeta',
      'flash vbmeta_system',
      'flash vendor_boot',
      'update-super',
      'resize product',
      'resize system',
      'resize system_ext',
      'resize system',
      'resize vendor',
      'resize vendor_dlkm',
      'flash product',
      'flash system',
      'flash system_ext',
      'flash system@b',
      'flash vendor',
      'flash vendor_dlkm',
    ]);
  });

  it('--skip-secondary drops *_other; --slot b flashes b, with secondaries to the slot given', () => {
    expect(flat({ skipSecondary: true })).not.toContain('flash system@b');
    const b = flat({ slotOverride: 'b', secondarySlot: 'a', currentSlot: 'a' });
    expect(b).toContain('flash boot@b');
    expect(b).toContain('flash system@a');
  });

  it('without super_empty.img: no resizes (update-super does nothing)', () => {
    const tasks = flat({ dynamic: undefined });
    expect(tasks.some((t) => t.startsWith('resize'))).toBe(false);
    expect(tasks).toContain('update-super');
  });

  it('a missing boot.img or system.img is an error; partition-exists makes an optional image required', () => {
    expect(() => collectTasks(base({ has: (n) => n !== 'boot.img' && pixelZip.includes(n) }))).toThrow(/boot\.img is missing/);
    expect(() => collectTasks(base({ required: ['recovery'] }))).toThrow(BadInputError);
  });

  it('should_flash_in_userspace: exact names, and both suffixes for slot-suffixed (retrofit) metadata', () => {
    expect(shouldFlashInUserspace(dynamic, 'system_b')).toBe(true);
    expect(shouldFlashInUserspace(dynamic, 'system')).toBe(false);
    expect(shouldFlashInUserspace([{ name: 'system', slotSuffixed: true }], 'system_a')).toBe(true);
    expect(shouldFlashInUserspace([{ name: 'system', slotSuffixed: true }], 'system')).toBe(false);
    expect(shouldFlashInUserspace(undefined, 'system_a')).toBe(false);
  });
});

describe('fastboot-info.txt', () => {
  const info = [
    '# a comment',
    'version 1',
    'flash boot',
    'flash --apply-vbmeta vbmeta',
    'flash --slot-other system system_other.img',
    'reboot fastboot',
    'update-super',
    'flash system',
    'flash vendor',
    'if-wipe erase userdata',
    'if-wipe erase metadata',
    '',
  ];

  it('its lines in order, resizes before the first dynamic flash, if-wipe only with -w', () => {
    expect(flat({ fastbootInfo: info })).toEqual(['flash boot', 'flash vbmeta', 'resize system', 'resize system', 'resize vendor', 'flash system@b', 'reboot fastboot', 'update-super', 'flash system', 'flash vendor']);
    expect(flat({ fastbootInfo: info, wantsWipe: true }).slice(-2)).toEqual(['erase userdata', 'erase metadata']);
    const vb = collectTasks(base({ fastbootInfo: info })).find((t) => t.kind === 'flash' && t.partition === 'vbmeta');
    expect(vb).toMatchObject({ applyVbmeta: true, image: 'vbmeta.img' });
  });

  it('a newer version or an unknown line is refused, naming the line', () => {
    expect(() => parseFastbootInfo(['version 2'], { slotOverride: '', secondarySlot: '', wantsWipe: false })).toThrow(/line 1: fastboot-info\.txt version 2 is newer/);
    expect(() => parseFastbootInfo(['flash boot', 'format userdata'], { slotOverride: '', secondarySlot: '', wantsWipe: false })).toThrow(/line 2: cannot read 'format userdata'/);
    expect(() => parseFastbootInfo(['reboot a b'], { slotOverride: '', secondarySlot: '', wantsWipe: false })).toThrow(BadInputError);
  });
});

describe('--exclude-dynamic-partitions (v35 CollectTasks filter)', () => {
  it('image list: only flashes of partitions super_empty.img does not list remain — no update-super, no resizes', () => {
    expect(flat({ excludeDynamic: true })).toEqual(['flash boot', 'flash init_boot', 'flash dtbo', 'flash vbmeta', 'flash vbmeta_system', 'flash vendor_boot']);
  });

  it('the slot decides: with metadata listing only the _b copies, the current slot a keeps its system flash, system_other (→ b) goes', () => {
    const onlyB = ['system_b', 'vendor_b'].map((name) => ({ name, slotSuffixed: false }));
    const t = flat({ excludeDynamic: true, dynamic: onlyB, has: (n) => ['boot.img', 'system.img', 'vendor.img', 'system_other.img', 'super_empty.img'].includes(n) });
    expect(t).toEqual(['flash boot', 'flash system', 'flash vendor']);
  });

  it('fastboot-info.txt: reboots, update-super and erases go too (if-wipe ones as well)', () => {
    const info = ['version 1', 'flash boot', 'reboot fastboot', 'update-super', 'flash system', 'flash --apply-vbmeta vbmeta', 'if-wipe erase userdata'];
    expect(flat({ excludeDynamic: true, fastbootInfo: info, wantsWipe: true })).toEqual(['flash boot', 'flash vbmeta']);
  });

  it('without super_empty.img every flash stays (nothing is dynamic), the no-op update-super goes', () => {
    expect(flat({ excludeDynamic: true, dynamic: undefined })).toEqual(flat({ dynamic: undefined }).filter((t) => t !== 'update-super'));
  });

  it('--slot all is refused (AOSP aborts: no single partition name per task)', () => {
    expect(() => collectTasks(base({ excludeDynamic: true, slotOverride: 'all', dynamic: undefined }))).toThrow(BadInputError);
    expect(() => collectTasks(base({ slotOverride: 'all', dynamic: undefined }))).not.toThrow();
  });
});
