import { useEffect, useState } from 'react';

/** The element's size, followed as it changes (at least 400 × 160). */
export function useSize(ref: React.RefObject<HTMLElement | null>): { width: number; height: number } {
  const [s, setS] = useState({ width: 900, height: 420 });
  useEffect(() => {
    const el = ref.current;
    if (el === null) return;
    const read = (): void => setS({ width: Math.max(400, Math.floor(el.clientWidth)), height: Math.max(160, Math.floor(el.clientHeight)) });
    const ro = new ResizeObserver(read);
    ro.observe(el);
    read();
    return () => ro.disconnect();
  }, [ref]);
  return s;
}

/** Whether the person asked for reduced motion (followed as the setting changes). */
export function useReducedMotion(): boolean {
  const [reduce, setReduce] = useState(() => typeof matchMedia === 'function' && matchMedia('(prefers-reduced-motion: reduce)').matches);
  useEffect(() => {
    if (typeof matchMedia !== 'function') return;
    const mq = matchMedia('(prefers-reduced-motion: reduce)');
    const on = (): void => setReduce(mq.matches);
    mq.addEventListener('change', on);
    return () => mq.removeEventListener('change', on);
  }, []);
  return reduce;
}
