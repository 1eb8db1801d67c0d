/** Empties the storage tables (between tests sharing one database). */
export async function resetTables(exec: (sql: string) => Promise<unknown>): Promise<void> {
  await exec('TRUNCATE dse_checkpoints');
  await exec('UPDATE dse_coordinator SET world_line = 0, cut = NULL, recovery_cuts = NULL, nodes = NULL, updated_at = NULL WHERE id = 1');
}
