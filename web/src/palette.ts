import type { VersionState } from './model/model';

/** Okabe-Ito: distinguishable with the common colour-vision deficiencies. Each state also has a shape cue. */
export const OKABE_ITO = {
  orange: '#E69F00',
  skyBlue: '#56B4E9',
  bluishGreen: '#009E73',
  yellow: '#F0E442',
  blue: '#0072B2',
  vermillion: '#D55E00',
  reddishPurple: '#CC79A7',
  black: '#000000',
} as const;

export const STATE_COLOUR: Record<VersionState, string> = {
  committed: OKABE_ITO.blue,
  speculative: OKABE_ITO.orange,
  persisting: OKABE_ITO.skyBlue,
  'rolled-back': OKABE_ITO.vermillion,
};

/** The second cue, besides colour, in words (legend, tooltips, screen readers). */
export const STATE_CUE: Record<VersionState, string> = {
  committed: 'solid',
  speculative: 'hatched, dashed outline',
  persisting: 'dotted outline',
  'rolled-back': 'crossed out ✕',
};

export const STATE_LABEL: Record<VersionState, string> = {
  committed: 'committed',
  speculative: 'speculative',
  persisting: 'persisting',
  'rolled-back': 'rolled back',
};
