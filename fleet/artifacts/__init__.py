"""The artifact store: files produced by steps (pod outputs, stored lists), a local directory by
default, behind one interface so S3 can back it."""
