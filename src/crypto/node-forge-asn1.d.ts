// node-forge/lib/asn1.js is forge.asn1 (the module's own export); @types/node-forge types only the index.
declare module 'node-forge/lib/asn1.js' {
  import type forge from 'node-forge';
  const asn1: typeof forge.asn1;
  export default asn1;
}
