// Moved to src/fastboot/reconnect.ts (the fastboot layer follows reboots too: reboot fastboot, update-super).
export * from '../fastboot/reconnect.js';
