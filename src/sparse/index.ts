// Public API of the sparse library (pure: files in, descriptors out; no device code).
export * from './parse.js';
export * from './errors.js';
export * from './descriptor.js';
export { type BackedBlock, type BlockImage, BlockListBuilder, blocksFromSparse } from './blocks.js';
export { blocksFromRawFile, classifyBlocks, RAW_BLOCK_SIZE, type ScanOptions } from './raw-scan.js';
export { resparse, RESPARSE_OVERHEAD, minResparseLimit } from './resparse.js';
export { encodeSparse, countChunks, type EncodeOptions, type ImageGeometry } from './encode.js';
export { readSparseFile, isSparseFile, type SparseFileInfo } from './file.js';
export { payloadChunks, writePayload, hashPayload } from './payload-io.js';
export { prepareForDownload, splitImage, countPieces, RESPARSE_LIMIT, type PrepareOptions } from './prepare.js';
export { rawToSparse, RawToSparseStream, sparseToRaw, sparseCrc, fileCrc32, type ConversionResult } from './convert.js';
