"""Data-source adapters. Each returns a DataFrame in its source's own layout;
:mod:`tacn.validators.source_layouts` turns it into documents. The client libraries
are imported inside the functions that fetch (``import akshare`` alone takes ~1 s)."""
