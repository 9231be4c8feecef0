"""followsift's domain: Apify I/O, gender inference and storage."""
