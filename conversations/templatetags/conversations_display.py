from django import template

from conversations.display import visible

register = template.Library()
register.filter("visible", visible, is_safe=False)
