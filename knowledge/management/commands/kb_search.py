from django.core.management.base import BaseCommand

from knowledge.search import search


class Command(BaseCommand):
    help = "Show what the knowledge base finds for a query, best first, as a chat turn would."

    def add_arguments(self, parser):
        parser.add_argument("query")
        parser.add_argument("--limit", type=int, default=10)

    def handle(self, *args, query, limit, **options):
        hits = search(query, limit=limit)
        if not hits:
            self.stdout.write("Nothing found.")
        for rank, hit in enumerate(hits, start=1):
            where = f"{hit.title} > {hit.heading}" if hit.heading else hit.title
            self.stdout.write(f"{rank:>2}. {hit.score:8.3f}  {where}")
            self.stdout.write(f"    {hit.url or '(uploaded file)'}")
            self.stdout.write(f"    {hit.snippet}")
