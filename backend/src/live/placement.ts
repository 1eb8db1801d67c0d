export { ownerOf as rendezvousOwner } from '../services/placement';
