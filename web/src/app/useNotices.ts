import { useCallback, useRef, useState } from 'react';

export type NoticeLevel = 'info' | 'warning' | 'error';
export interface Notice {
  id: number;
  level: NoticeLevel;
  message: string;
}
export type Notify = (level: NoticeLevel, message: string) => void;

/** Short-lived messages in a corner: the last four, each gone after a few seconds (errors stay longer). */
export function useNotices(): { notices: Notice[]; notify: Notify } {
  const [notices, setNotices] = useState<Notice[]>([]);
  const nextId = useRef(0);
  const notify = useCallback((level: NoticeLevel, message: string) => {
    const id = ++nextId.current;
    setNotices((ns) => [...ns.slice(-3), { id, level, message }]);
    setTimeout(() => setNotices((ns) => ns.filter((n) => n.id !== id)), level === 'error' ? 12_000 : 6_000);
  }, []);
  return { notices, notify };
}
