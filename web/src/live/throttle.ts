import { useEffect, useRef, useState } from 'react';

/**
 * `value` as it was at most `ms` milliseconds ago: it follows changes at most once per `ms`, and
 * always takes the last one (a trailing update), so a panel that does not need every frame redraws a
 * few times a second on a busy cluster and still ends up showing the newest state once it is quiet.
 */
export function useThrottled<T>(value: T, ms: number): T {
  const [shown, setShown] = useState(value);
  const lastAt = useRef(-Infinity);
  useEffect(() => {
    if (Object.is(value, shown)) return;
    const wait = lastAt.current + ms - performance.now();
    const take = (): void => {
      lastAt.current = performance.now();
      setShown(() => value);
    };
    if (wait <= 0) {
      take();
      return;
    }
    const timer = setTimeout(take, wait);
    return () => clearTimeout(timer);
  }, [value, shown, ms]);
  return shown;
}
