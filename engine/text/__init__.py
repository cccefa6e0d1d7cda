"""Text rules shared by summaries, translation and reading: scripts, sentences, Markdown blocks."""
