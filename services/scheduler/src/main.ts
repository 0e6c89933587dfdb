import { VERSION } from '@gambit/shared'; export const v = VERSION;
