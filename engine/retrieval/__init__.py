"""Document collections: passages of the user's files, found again by meaning and by keyword.

``embedder`` turns texts into unit vectors, ``chunks`` cuts documents into cited passages,
``collection`` keeps them (SQLite + a vector matrix per collection), ``indexer`` reads folders
into a collection incrementally, ``search`` ranks passages for a question (hybrid), ``answer``
asks a chat model with numbered passages and checks its citations.
"""

# The catalog's embedding model (convert/importers/service.py installs it): new collections embed
# with it. Here, not in ``embedder``, so the CLI can name it without loading ONNX Runtime.
EMBEDDING_MODEL = "minilm"
