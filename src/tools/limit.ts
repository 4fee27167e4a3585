// Concurrency limits for the stages that share a machine: base reads, createrepo_c runs.

export type Limiter = <T>(work: () => Promise<T>) => Promise<T>;

/** Runs at most `count` of the works given to it at once, in the order given. */
export function limiter(count: number): Limiter {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async (work) => {
    if (running < count) running++;
    else await new Promise<void>((resume) => waiting.push(resume)); // the slot is handed over
    try {
      return await work();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else running--;
    }
  };
}

/** No limit: the work starts at once. */
export const unlimited: Limiter = (work) => work();
