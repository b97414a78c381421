// Partitions holding identity and calibration data that no ROM carries
// (edl.md §5.2, §7.5): a ROM flash never writes or erases them, and `edl erase`
// needs --force for them.
export const PROTECTED_PARTITIONS = /^(secdata|persist|persistbak|modemst1|modemst2|fsg|fsc|devinfo|frp)$/i;
