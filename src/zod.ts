// zod, configured once for every schema in miflash (import { z } from here, not
// from 'zod': the setting must be in place before a schema is built).
// jitless: otherwise zod generates (new Function) and compiles a parser for each
// object schema on its first use: a one-shot CLI validating a few documents pays
// ~10 ms for it and gets nothing back. Results are the same either way.
import { z } from 'zod';

z.config({ jitless: true });

export { z };
