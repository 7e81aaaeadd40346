/**
 * When the bench server published each record's last change (right after its commit), in epoch
 * milliseconds (`performance.timeOrigin + performance.now()` in the server process: comparable
 * with the same clock in this one). Null where no change of the record was published.
 */
export async function commitTimesOf(serverUrl: string, uids: string[]): Promise<Array<number | null>> {
  const response = await fetch(`${serverUrl}/bench/commits`, { method: 'POST', body: JSON.stringify(uids) })
  return (await response.json()) as Array<number | null>
}
