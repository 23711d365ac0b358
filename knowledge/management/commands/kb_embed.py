from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from knowledge.semantic import BATCH_SIZE, SemanticError, embed_pending, forget_embeddings


class Command(BaseCommand):
    help = (
        "Embed the knowledge base's chunks that have no embedding yet (semantic search, "
        "CHATBOT_EMBEDDING_MODEL). Syncs do this themselves; run it after turning semantic "
        "search on, or after a sync whose embeddings failed."
    )

    def add_arguments(self, parser):
        parser.add_argument("--batch-size", type=int, default=BATCH_SIZE, help="chunks per request to /embeddings")
        parser.add_argument(
            "--reset", action="store_true", help="forget every stored embedding first (after changing the model)"
        )

    def handle(self, *args, batch_size, reset, **options):
        if not settings.CHATBOT_EMBEDDING_MODEL:
            raise CommandError("CHATBOT_EMBEDDING_MODEL is not set: semantic search is off.")
        if batch_size < 1:
            raise CommandError("--batch-size must be at least 1.")
        if reset:
            self.stdout.write(f"Forgot {forget_embeddings()} embeddings.")
        try:
            embedded = embed_pending(batch_size=batch_size)
        except SemanticError as error:
            raise CommandError(
                f"{error} Chunks embedded before it keep their embeddings; run again to go on."
            ) from None
        self.stdout.write(f"Embedded {embedded} chunks.")
