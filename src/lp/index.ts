// Android dynamic partitions (liblp metadata): pure library, no device code.
export * from './format.js';
export { parseGeometry, serializeGeometry, parseMetadata, serializeMetadata, metadataLength } from './codec.js';
export * from './image.js';
export * from './builder.js';
export { formatMetadata, formatJson, deviceInfo, attributeString, headerFlagString, reservedMetadataBytes } from './dump.js';
