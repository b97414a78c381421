// Every command group registers itself here. Keep these modules free of heavy
// imports: load device/UI code inside the action handlers.
import type { Command } from 'commander';
import { registerEmulate } from './emulate.js';
import { registerDevice } from './device.js';
import { registerLogical } from './device-logical.js';
import { registerRam } from './device-ram.js';
import { registerUpdate } from './device-update.js';
import { registerSparse } from './sparse.js';
import { registerPlan } from './plan.js';
import { registerEdl } from './edl.js';
import { registerLp } from './lp.js';

export function registerCommands(program: Command): void {
  registerEmulate(program);
  registerDevice(program);
  registerRam(program);
  registerLogical(program);
  registerUpdate(program);
  registerSparse(program);
  registerPlan(program);
  registerEdl(program);
  registerLp(program);
  void program;
}
