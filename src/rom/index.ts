// Public API of the ROM library: open a package, read its side-car files, and
// turn its flash scripts into typed plans. Pure: no device code.
export { openRom, readAndroidInfoFromZip, type Rom, type RomScript, type OpenRomOptions } from './rom.js';
export { parseScript, mergeTwin, opSignature, touchesUserData, ScriptInterpretError, modeFromName, type ParseOptions } from './script/index.js';
export { planForRom, selectScript, MODE_VARIANTS, type RomMode, type PlanForRomOptions } from './plan-for-rom.js';
export {
  parseMisc,
  parseMd5Xml,
  parseCrcList,
  parseSparseCrcList,
  parseAntiVersion,
  parseAndroidInfo,
  SidecarError,
  type SparseCrcEntry,
  type AndroidInfo,
  type AndroidInfoRequirement,
  type Md5Sums,
} from './sidecar.js';
export {
  extractTar,
  extractZip,
  md5File,
  md5PrefixFromName,
  safeEntryPath,
  checkLinkTarget,
  UnsafeArchiveError,
  CorruptDownloadError,
  type ExtractProgress,
  type ProgressFn,
} from './archive.js';
export { crc32, digestFile, type FileDigest } from './hash.js';
