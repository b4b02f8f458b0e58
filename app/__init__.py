"""The answer service: hybrid retrieval over the index, cited answers, HTTP and the chat page."""
