// The one error type device operations throw: its message is the FAIL text the host sees.
export class FastbootCommandError extends Error {}
