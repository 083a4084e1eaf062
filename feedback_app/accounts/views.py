"""The account page: change one's password, create, list and revoke one's API tokens."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.template.response import TemplateResponse
from django.views.decorators.http import require_GET, require_POST

from feedback_app.common.errors import InvalidInput
from feedback_app.core.audit import Origin

from .forms import PasswordChangeForm, TokenCreateForm
from .passwords import password_changed
from .tokens import CreatedToken, is_expired, token_create, token_revoke, tokens_of


def _page(
    request: HttpRequest,
    *,
    password_form: PasswordChangeForm | None = None,
    token_form: TokenCreateForm | None = None,
    created: CreatedToken | None = None,
    status: int = 200,
) -> TemplateResponse:
    tokens = [(t, is_expired(t)) for t in tokens_of(request.user)]
    context: dict[str, Any] = {
        "password_form": password_form or PasswordChangeForm(request.user),
        "token_form": token_form or TokenCreateForm(),
        "tokens": tokens,
        "created": created,
    }
    response = TemplateResponse(request, "accounts/account.html", context, status=status)
    # The page may hold a new token's key: no cache may keep it.
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_GET
def account(request: HttpRequest) -> HttpResponse:
    return _page(request)


@login_required
@require_POST
def password_change(request: HttpRequest) -> HttpResponse:
    form = PasswordChangeForm(request.user, request.POST)
    if not form.is_valid():
        return _page(request, password_form=form, status=400)
    user = form.save()
    update_session_auth_hash(request, user)  # this session stays signed in (a new key)
    ended = password_changed(
        user=user,
        origin=Origin.of(request),
        keep_session=request.session.session_key,
        revoke_tokens=form.cleaned_data["revoke_tokens"],
        how="account page",
    )
    revoked = f" and {ended.tokens_revoked} API tokens revoked" if ended.tokens_revoked else ""
    messages.success(
        request,
        f"Your password was changed: {ended.sessions_ended} other sessions ended{revoked}.",
    )
    return redirect("accounts:account")


@login_required
@require_POST
def token_new(request: HttpRequest) -> HttpResponse:
    """Answer with the page itself, not a redirect: the key is in this response only."""
    form = TokenCreateForm(request.POST)
    if form.is_valid():
        try:
            created = token_create(
                user=request.user,
                name=form.cleaned_data["name"],
                expiry_days=form.cleaned_data["expiry_days"],
                origin=Origin.of(request),
            )
        except InvalidInput as exc:
            for problem in exc.problems:
                form.add_error(
                    problem.field if problem.field in form.fields else None, problem.message
                )
        else:
            return _page(request, created=created)
    return _page(request, token_form=form, status=400)


@login_required
@require_POST
def token_delete(request: HttpRequest, token_id: int) -> HttpResponse:
    token = token_revoke(user=request.user, token_id=token_id, origin=Origin.of(request))
    if token is None:
        raise Http404("no such token of yours")
    messages.success(request, "The token was revoked: it no longer works.")
    return redirect("accounts:account")
