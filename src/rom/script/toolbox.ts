// The text tools as the engine and the runner use them.
import type { ToolBox } from '../../plan/evaluate.js';
import { isTool, runTool } from './tools/index.js';

export const TOOLBOX: ToolBox = { has: isTool, run: runTool };
