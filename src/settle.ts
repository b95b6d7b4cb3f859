/**
 * Two pieces of work on two connections at once: both are finished before an
 * error is thrown (nothing is left running on a connection), and the error
 * thrown is the first one's when both fail, as if they had run in turn.
 *
 * @example const [objects, tables] = await both(readCatalog(q, scope), readRelations(lane, excluded));
 */
export async function both<A, B>(first: Promise<A>, second: Promise<B>): Promise<[A, B]> {
  const [a, b] = await Promise.allSettled([first, second]);
  if (a.status === 'rejected') throw a.reason;
  if (b.status === 'rejected') throw b.reason;
  return [a.value, b.value];
}
