// Every command group registers itself here. Keep these modules free of heavy
// imports: load device/UI code inside the action handlers.
import type { Command } from 'commander';

export function registerCommands(program: Command): void {
  void program;
}
