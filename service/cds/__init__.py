"""CDS Hooks 2.0 (https://cds-hooks.hl7.org/2.0/), all but the routes (``service.api.cds_hooks``)
and the pure shapes and card builder (``schemas.cds_hooks``).

- ``tokens``: the CDS clients' signed JWTs verified, and the trusted clients read at start-up;
  ``jwks``: a client's JWK Set at a URL, fetched off the request path.
- ``authentication``: the caller of a request: its token verified and used once, the failed
  attempts of its address counted, its client's tenant made the principal.
- ``pseudonyms``: the keyed hashes that stand for the identifiers an EHR sends.
- ``intake``: what a call is about: the request, the prefetched intake assessed and stored, or
  the patient's latest stored assessment.
- ``cards``: the card for that assessment, handed to the pure builder.
- ``feedback``: what the users did with the cards, recorded.

The request-time modules read the app's state (``service.state``), so the state does not
import this package: it types the verifier and the pseudonymizer it holds by what they do.
"""
