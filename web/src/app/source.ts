import { useCallback, useRef, useState } from 'react';
import { simulationFromUrl } from './url';

/** What the page shows: the live cluster, or a replay (of a simulation the server ran, or of an imported trace). */
export type Source = { kind: 'live' } | { kind: 'replay'; label: string; simulation: Record<string, string> | null };

function sourceFromUrl(): Source {
  const sim = simulationFromUrl();
  return sim === null ? { kind: 'live' } : { kind: 'replay', label: `simulation seed ${sim.sim}`, simulation: sim };
}

/**
 * The source as state (for drawing) and as a ref (for the live feed's callbacks, which must drop a
 * batch at once after a switch to a replay, before React has drawn it): both change together.
 */
export function useSource(): { source: Source; sourceRef: React.RefObject<Source>; switchSource(s: Source): void } {
  const [source, setSource] = useState<Source>(sourceFromUrl);
  const sourceRef = useRef<Source>(source);
  const switchSource = useCallback((s: Source) => {
    sourceRef.current = s;
    setSource(s);
  }, []);
  return { source, sourceRef, switchSource };
}
