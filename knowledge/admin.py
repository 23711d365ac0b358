"""The knowledge base in the admin: sources (add a page or sitemap URL, upload files,
sync, delete), each source's last run, and its documents with a read-only chunk preview.

Syncing is the task queue's work (``knowledge.tasks``): the admin only enqueues it.
Deleting goes through ``knowledge.index``, so what is deleted leaves answers at once.
Everything shown is escaped by the templates or ``format_html``.
"""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, JSONField, OuterRef, Subquery
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django_tasks import TaskResultStatus

from knowledge.extract import FORMATS_BY_SUFFIX
from knowledge.index import remove_documents, remove_sources
from knowledge.models import Chunk, Document, Source, SourceKind, SyncRun, SyncStatus
from knowledge.sync import files_store, run_counts
from knowledge.tasks import sync_source

# One upload request carries at most this many files.
MAX_UPLOAD_FILES = 50
# The list shows this many errors of a source's last run; its page shows them all.
LISTED_ERRORS = 3


class SourceForm(forms.ModelForm):
    """A page or a sitemap, by URL; files come through the upload view."""

    kind = forms.ChoiceField(choices=[(SourceKind.SITEMAP, "Sitemap"), (SourceKind.URL, "Page URL")])
    location = forms.URLField(
        label="URL",
        max_length=2048,
        assume_scheme="https",
        help_text="A sitemap (sitemap indexes and .xml.gz too) or one page. Only its site is crawled.",
    )

    class Meta:
        model = Source
        fields = ["kind", "location"]

    def clean_location(self):
        location = self.cleaned_data["location"]
        if not location.startswith(("http://", "https://")):
            raise ValidationError("Only http and https URLs can be crawled.")
        return location


class MultipleFileInput(forms.ClearableFileInput):
    allow_multiple_selected = True


class MultipleFileField(forms.FileField):
    widget = MultipleFileInput

    def clean(self, data, initial=None):
        files = data if isinstance(data, list | tuple) else [data]
        clean_one = super().clean
        return [clean_one(file, initial) for file in files]


class UploadForm(forms.Form):
    label = forms.CharField(
        max_length=200,
        initial="Uploaded files",
        help_text="The source these files join; a file with the same name replaces the earlier one.",
    )
    files = MultipleFileField(help_text="HTML, Markdown, plain text or PDF.")

    def clean_files(self):
        files = self.cleaned_data["files"]
        limit = settings.CHATBOT_KB_MAX_PAGE_BYTES
        if len(files) > MAX_UPLOAD_FILES:
            raise ValidationError(f"At most {MAX_UPLOAD_FILES} files at a time.")
        for file in files:
            suffix = "." + file.name.rsplit(".", 1)[-1].lower() if "." in file.name else ""
            if suffix not in FORMATS_BY_SUFFIX:
                raise ValidationError(f"{file.name}: not HTML, Markdown, plain text or PDF.")
            if file.size > limit:
                raise ValidationError(f"{file.name}: over {limit} bytes (CHATBOT_KB_MAX_PAGE_BYTES).")
        return files


@admin.register(Source)
class SourceAdmin(admin.ModelAdmin):
    form = SourceForm
    list_display = ["location", "kind", "state", "documents", "chunks", "last_synced_at", "last_run_errors"]
    list_filter = ["kind", "state"]
    search_fields = ["location"]
    actions = ["sync_now"]
    change_form_template = "admin/knowledge/source/change_form.html"
    change_list_template = "admin/knowledge/source/change_list.html"

    def get_queryset(self, request):
        last_run = SyncRun.objects.filter(source=OuterRef("pk")).order_by("-started_at", "-pk")
        return (
            super()
            .get_queryset(request)
            .with_counts()
            .annotate(last_errors=Subquery(last_run.values("errors")[:1], output_field=JSONField()))
        )

    def get_form(self, request, obj=None, **kwargs):
        if obj is not None:  # a source's URL is what it is; nothing on its page is edited
            kwargs["form"] = forms.ModelForm
        return super().get_form(request, obj, **kwargs)

    def get_fields(self, request, obj=None):
        return ["kind", "location"] if obj is None else ["kind", "location", "state", "last_synced_at", "last_error"]

    def get_readonly_fields(self, request, obj=None):
        return [] if obj is None else ["kind", "location", "state", "last_synced_at", "last_error"]

    @admin.display(description="pages", ordering="document_count")
    def documents(self, source: Source):
        url = reverse("admin:knowledge_document_changelist") + f"?source__id__exact={source.pk}"
        return format_html('<a href="{}">{}</a>', url, source.document_count)

    @admin.display(description="chunks", ordering="chunk_count")
    def chunks(self, source: Source) -> int:
        return source.chunk_count

    @admin.display(description="errors of the last run")
    def last_run_errors(self, source: Source):
        errors = source.last_errors or []
        shown = format_html_join("", "<li>{}: {}</li>", ((e["url"], e["error"]) for e in errors[:LISTED_ERRORS]))
        more = format_html("<li>and {} more</li>", len(errors) - LISTED_ERRORS) if len(errors) > LISTED_ERRORS else ""
        return format_html('<ul class="kb-errors">{}{}</ul>', shown, more) if errors else "—"

    # --- Sync and delete ------------------------------------------------------------

    def save_model(self, request, obj, form, change):
        super().save_model(request, obj, form, change)
        if not change:
            self.enqueue(request, obj)

    def enqueue(self, request, source: Source) -> None:
        if source.kind == SourceKind.FILES:
            self.message_user(request, f"{source}: files are synced by uploading them again.", messages.WARNING)
            return
        result = sync_source.enqueue(source.pk)
        if not result.is_finished:
            self.message_user(request, f"{source}: sync queued; the worker runs it shortly.")
        elif result.status == TaskResultStatus.SUCCESSFUL and result.return_value is None:
            self.message_user(request, f"{source}: being synced already.", messages.WARNING)
        else:  # the immediate backend (development) ran it already
            run = source.runs.first()
            level = messages.SUCCESS if run.status == SyncStatus.SUCCEEDED else messages.ERROR
            self.message_user(request, f"{source}: sync {run.status} ({run_counts(run)}).", level)

    @admin.action(description="Sync now", permissions=["change"])
    def sync_now(self, request, queryset):
        for source in queryset:
            self.enqueue(request, source)

    def get_deleted_objects(self, objs, request):
        """What the confirmation page lists: the sources and how much of the index goes
        with them, counted, rather than every chunk and posting by name."""
        sources = Source.objects.filter(pk__in=[source.pk for source in objs]).with_counts()
        counts = {
            "sources": len(sources),
            "documents": sum(source.document_count for source in sources),
            "chunks": sum(source.chunk_count for source in sources),
        }
        return [str(source) for source in sources], counts, set(), []

    def delete_model(self, request, obj):
        remove_sources(Source.objects.filter(pk=obj.pk))

    def delete_queryset(self, request, queryset):
        # The list's queryset carries the counts (GROUP BY), which cannot be locked.
        remove_sources(Source.objects.filter(pk__in=list(queryset.values_list("pk", flat=True))))

    # --- Extra views: sync one, upload files ------------------------------------------

    def get_urls(self):
        extra = [
            path("<int:source_id>/sync/", self.admin_site.admin_view(self.sync_view), name="knowledge_source_sync"),
            path("upload/", self.admin_site.admin_view(self.upload_view), name="knowledge_source_upload"),
        ]
        return extra + super().get_urls()

    def sync_view(self, request, source_id: int):
        source = get_object_or_404(Source, pk=source_id)
        if request.method != "POST" or not self.has_change_permission(request, source):
            raise PermissionDenied
        self.enqueue(request, source)
        return HttpResponseRedirect(reverse("admin:knowledge_source_change", args=[source.pk]))

    def upload_view(self, request):
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = UploadForm(request.POST or None, request.FILES or None)
        if request.method == "POST" and form.is_valid():
            source, _ = Source.objects.get_or_create(kind=SourceKind.FILES, location=form.cleaned_data["label"])
            files = [(file.name, file.read()) for file in form.cleaned_data["files"]]
            run = files_store(source=source, files=files, complete=False)
            level = messages.WARNING if run.failed else messages.SUCCESS
            self.message_user(request, f"{source}: {run_counts(run)}.", level)
            return HttpResponseRedirect(reverse("admin:knowledge_source_change", args=[source.pk]))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Upload files",
            "form": form,
            "max_files": MAX_UPLOAD_FILES,
        }
        return TemplateResponse(request, "admin/knowledge/source/upload.html", context)

    def change_view(self, request, object_id, form_url="", extra_context=None):
        source = self.get_object(request, object_id)
        context = {
            "last_run": source.runs.first() if source else None,
            "documents_url": reverse("admin:knowledge_document_changelist") + f"?source__id__exact={object_id}",
            "show_save": False,
            "show_save_and_continue": False,
            "show_save_and_add_another": False,
        }
        return super().change_view(request, object_id, form_url, {**(extra_context or {}), **context})


class ChunkInline(admin.TabularInline):
    """The document as the index holds it: read-only, in order."""

    model = Chunk
    fields = ["ordinal", "heading", "preview", "length"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    show_change_link = False
    verbose_name = "chunk"

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="text")
    def preview(self, chunk: Chunk):
        return format_html('<div style="white-space: pre-wrap; max-width: 60rem">{}</div>', chunk.text)


@admin.register(Document)
class DocumentAdmin(admin.ModelAdmin):
    """Documents come from syncs and uploads, never from this form: it only shows them
    (and deletes them, out of the index at once)."""

    list_display = ["__str__", "link", "source", "chunk_count", "duplicate_of", "updated_at"]
    list_filter = ["source"]
    list_select_related = ["source", "duplicate_of"]
    search_fields = ["title", "url", "key"]
    fields = ["source", "title", "url", "key", "duplicate_of", "etag", "last_modified", "fetched_at", "updated_at"]
    readonly_fields = fields
    inlines = [ChunkInline]

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(chunk_count=Count("chunks"))

    @admin.display(description="URL", ordering="url")
    def link(self, document: Document):
        if not document.url:
            return "—"
        return format_html('<a href="{}" rel="noopener noreferrer">{}</a>', document.url, document.url)

    @admin.display(description="chunks", ordering="chunk_count")
    def chunk_count(self, document: Document) -> int:
        return document.chunk_count

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def get_deleted_objects(self, objs, request):
        documents = Document.objects.filter(pk__in=[document.pk for document in objs])
        counts = {"documents": documents.count(), "chunks": Chunk.objects.filter(document__in=documents).count()}
        return [str(document) for document in documents], counts, set(), []

    def delete_model(self, request, obj):
        remove_documents(Document.objects.filter(pk=obj.pk))

    def delete_queryset(self, request, queryset):
        # The list's queryset carries the chunk counts (GROUP BY), which cannot be locked.
        remove_documents(Document.objects.filter(pk__in=list(queryset.values_list("pk", flat=True))))
