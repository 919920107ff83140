/**
 * CA rotation, the pure part: given where the controller's CA stands and the stage a task asks for,
 * which CA certificates go into root.crt, which issuers a kept leaf may have, what is served after a
 * leaf, and which leaves a forced re-issue replaces. No I/O: unit-tested with real certificates.
 *
 * Why two cross certificates: during a rotation a server may present a leaf of EITHER CA, and a
 * client may trust EITHER CA (not yet updated, or already updated). Each leaf is followed by the
 * cross certificate that links its issuer to the other CA, so every client/server pair verifies:
 *   leaf(new) + forward (new CA signed by old)  -> old-CA clients: leaf -> forward -> old; new-CA clients stop at new
 *   leaf(old) + back    (old CA signed by new)  -> new-CA clients: leaf -> back -> new;    old-CA clients stop at old
 * PostgreSQL and Pgpool-II send the whole ssl_cert file (SSL_CTX_use_certificate_chain_file), and
 * libpq sends the whole sslcert file, so putting the cross certificate after the leaf is enough.
 */
import type { CertAndKey } from '../crypto/x509.js';
import { certIssuedBy } from '../crypto/x509.js';

/**
 * What a gencert task does about a CA rotation:
 *  - auto:   follow the controller (install.yaml): never start, advance or undo a rotation;
 *  - trust:  rotation step 1: root.crt holds both CAs; existing leaves stay (with the linking chain);
 *  - rotate: rotation step 2: leaves not issued by the new CA are re-issued from it;
 *  - finish: the old CA is dropped: root.crt = new CA only, no cross certificate after the leaf.
 */
export type RotationMode = 'auto' | 'trust' | 'rotate' | 'finish';
export const ROTATION_MODES = ['auto', 'trust', 'rotate', 'finish'] as const;

/** A rotation in progress on the controller (pgtls_ca_dir/next/ or pgtls_ca_dir/previous/). */
export interface Rotation {
  /** the CA being replaced (its key is only needed on the controller, for the cross certificates) */
  oldCaPem: string;
  /** the CA new leaves are issued by from the start of the rotation */
  next: CertAndKey;
  /** the new CA's subject and key, issued by the old CA */
  forward: string;
  /** the old CA's subject and key, issued by the new CA */
  back: string;
  /** the new CA is pgtls_ca_dir/ca.crt (step `ca` completed); the old one waits in previous/ */
  published: boolean;
}

/** What gencert converges a host to, for one CA situation. */
export interface CaView {
  /** the CA that signs any leaf issued now */
  issuer: CertAndKey;
  /** root.crt, in this order */
  bundle: string[];
  /** a leaf issued by one of these may stay */
  accepted: string[];
  /** certificates written after a leaf in its file */
  chainFor(leafPem: string): string[];
  /** for summaries */
  stage: 'steady' | 'rotating' | 'finishing';
}

export function caView(mode: RotationMode, current: CertAndKey, rotation: Rotation | null): CaView {
  if (!rotation) {
    if (mode === 'trust' || mode === 'rotate') throw new Error('no CA rotation in progress (ca_rotate step begin comes first)');
    return { issuer: current, bundle: [current.certPem], accepted: [current.certPem], chainFor: () => [], stage: 'steady' };
  }
  const next = rotation.next;
  if (mode === 'finish') {
    if (!rotation.published)
      throw new Error('the CA rotation was not completed (the new CA is not published yet): run reissue=ca again before ca-finish');
    return { issuer: next, bundle: [next.certPem], accepted: [next.certPem], chainFor: () => [], stage: 'finishing' };
  }
  return {
    issuer: next,
    // the new CA first: it is the one that stays
    bundle: [next.certPem, rotation.oldCaPem],
    // auto and trust keep a leaf of the old CA (it still verifies for everybody, thanks to `back`)
    accepted: mode === 'rotate' ? [next.certPem] : [next.certPem, rotation.oldCaPem],
    chainFor: (leafPem) => (certIssuedBy(leafPem, next.certPem) ? [rotation.forward] : certIssuedBy(leafPem, rotation.oldCaPem) ? [rotation.back] : []),
    stage: 'rotating',
  };
}

/** Leaf kinds a `force` value re-issues even when they are valid. */
export type Force = 'none' | 'server' | 'client' | 'all';
export function forced(force: Force, leaf: 'server' | 'client'): boolean {
  return force === 'all' || force === leaf;
}

/** The content of a certificate file: the leaf, then its chain. */
export function certFile(leafPem: string, chain: string[]): string {
  return [leafPem, ...chain].map((p) => (p.endsWith('\n') ? p : `${p}\n`)).join('');
}
