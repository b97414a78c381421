// The flash-script engine: what a .sh or .bat front end calls (engine.ts), the
// path explorer (explore.ts) and the plan builder (build-plan.ts). README.md
// in this folder is the contract for front ends.
export { Engine, PathEnd, ScriptInterpretError, DEFAULT_LIMITS, type CommandResult, type EngineOptions, type Limits, type Loc } from './engine.js';
export { explore, type Exploration, type FailurePolicy, type Program } from './explore.js';
export { buildPlan, type BuiltScript } from './build-plan.js';
export { interpretFastbootArgv, type FastbootMeaning, type FileResolution, type OpSpec } from './fastboot-argv.js';
