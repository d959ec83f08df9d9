/** passthru's version, as package.json says (a test keeps the two equal). A constant rather than
 *  a read of package.json: the CLI's bundle and tsc's dist/ sit at different depths below it. */
export const PASSTHRU_VERSION = '0.1.0';
