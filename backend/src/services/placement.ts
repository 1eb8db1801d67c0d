/** Placement lives in `@dse/shared` (the web draws it too); the services re-export it. */
export { hash32, MEMBERSHIP_PREFIX, ownerOf, unitBusy, unitOfRequest, unitOfStateKey } from '@dse/shared';
