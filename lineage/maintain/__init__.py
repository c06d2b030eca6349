"""Store maintenance the owner role runs: monthly partitions ahead (:mod:`.partitions`) and
retention of old ones, archived with their ledger proofs first (:mod:`.retention`);
``lineage maintain`` (:mod:`.cli`)."""
