"""`{% extends %}` and `{% include %}` for every template, with what they look up kept.

Loaded as a template builtin (settings.TEMPLATES) after Django's own, so these are the tags
everywhere: the same syntax and the same output. On every render Django's `{% extends %}` walks
the whole base template for its blocks, and each `{% include %}` of a fixed name asks the
template loaders for the template again — together a fifth of a sign-in page's rendering. Here
a base template's blocks are listed once per compiled template, and an included template is
kept on its node while the engine's loaders cache templates (without the cached loader, as when
a developer wants every edit seen, each render asks the loaders as Django does).
"""

from __future__ import annotations

from django import template
from django.template import loader_tags
from django.template.base import TextNode
from django.template.loader_tags import BLOCK_CONTEXT_KEY, BlockContext, BlockNode, ExtendsNode, IncludeNode
from django.template.loaders.cached import Loader as CachedLoader

register = template.Library()


def _root_blocks(parent) -> dict | None:
    """The blocks of a template that extends nothing (None if it extends another), kept on it."""
    try:
        return parent.twostep_root_blocks
    except AttributeError:
        pass
    blocks = None
    for node in parent.nodelist:
        # As Django's ExtendsNode: an extends tag has to be the first node that is not text.
        if not isinstance(node, TextNode):
            if not isinstance(node, ExtendsNode):
                blocks = {n.name: n for n in parent.nodelist.get_nodes_by_type(BlockNode)}
            break
    parent.twostep_root_blocks = blocks
    return blocks


class KeptExtendsNode(ExtendsNode):
    def render(self, context):
        # Django's ExtendsNode.render, the base's blocks listed once.
        compiled_parent = self.get_parent(context)
        if BLOCK_CONTEXT_KEY not in context.render_context:
            context.render_context[BLOCK_CONTEXT_KEY] = BlockContext()
        block_context = context.render_context[BLOCK_CONTEXT_KEY]
        block_context.add_blocks(self.blocks)
        blocks = _root_blocks(compiled_parent)
        if blocks is not None:
            block_context.add_blocks(blocks)
        with context.render_context.push_state(compiled_parent, isolated_context=False):
            return compiled_parent._render(context)


def _loaders_cache(engine) -> bool:
    return bool(engine.template_loaders) and all(isinstance(loader, CachedLoader)
                                                 for loader in engine.template_loaders)


class KeptIncludeNode(IncludeNode):
    kept = None  # (engine, template) once a fixed name was found through caching loaders

    def render(self, context):
        expression = self.template
        if expression.filters or not isinstance(expression.var, str):
            return super().render(context)  # a variable: Django's node, every time
        engine = context.template.engine
        kept = self.kept
        if kept is None or kept[0] is not engine:
            name = loader_tags.construct_relative_path(self.origin.template_name, expression.var)
            found = engine.get_template(name)
            if not _loaders_cache(engine):
                return self._render_with(found, context)
            kept = self.kept = (engine, found)
        return self._render_with(kept[1], context)

    def _render_with(self, found, context):
        # The end of Django's IncludeNode.render.
        values = {name: var.resolve(context) for name, var in self.extra_context.items()}
        if self.isolated_context:
            return found.render(context.new(values))
        with context.push(**values):
            return found.render(context)


@register.tag("extends")
def do_extends(parser, token):
    node = loader_tags.do_extends(parser, token)
    return KeptExtendsNode(node.nodelist, node.parent_name, node.template_dirs)


@register.tag("include")
def do_include(parser, token):
    node = loader_tags.do_include(parser, token)
    return KeptIncludeNode(node.template, extra_context=node.extra_context,
                           isolated_context=node.isolated_context)
