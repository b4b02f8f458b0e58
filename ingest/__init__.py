"""Ingest: corpus posts -> chunks -> BM25 and FAISS indexes in indexes/."""
