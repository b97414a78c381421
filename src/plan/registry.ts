import { z } from '../zod.js';

/** Names for shared sub-schemas in the generated JSON Schema ($defs). A local registry, so loading this module twice never clashes. */
export const planRegistry = z.registry<{ id: string }>();
