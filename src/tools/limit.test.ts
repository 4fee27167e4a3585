import { limiter } from './limit.js';

test('limiter: never more than its count at once, every work done, in the order given', async () => {
  const limit = limiter(2);
  let running = 0;
  let most = 0;
  const started: number[] = [];
  const results = await Promise.all(
    [0, 1, 2, 3, 4, 5].map((i) =>
      limit(async () => {
        started.push(i);
        most = Math.max(most, ++running);
        await new Promise((r) => setTimeout(r, 5 + (i % 3) * 5));
        running--;
        if (i === 3) throw new Error('three');
        return i;
      }).catch((e: Error) => e.message),
    ),
  );
  expect(most).toBe(2);
  expect(started).toEqual([0, 1, 2, 3, 4, 5]);
  expect(results).toEqual([0, 1, 2, 'three', 4, 5]); // a failure frees its slot too
});
