"""Server-rendered pages: login, the review page and the admin page.

Login takes a token in a form and answers with a server-side session id in an HttpOnly,
SameSite=Strict cookie (Secure over https), so neither page scripts nor the cookie jar hold the
token; logout revokes the session. State-changing calls from the page carry the CSRF token the
page embeds. Templates are Jinja2 with autoescaping on: every prompt, label and comment is escaped,
and data for the page's script travels as JSON (`|tojson`) in a non-executable block.
"""

from __future__ import annotations

import hmac
from typing import Any

import jinja2
from fastapi import APIRouter, Form, Request, status
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from synthgate.api import API_DIR
from synthgate.api.auth import SESSION_COOKIE, User, csrf_token, optional_user
from synthgate.api.review import agreement_or_missing, public_stats, recent_decisions
from synthgate.api.view import agreement_tables, review_view
from synthgate.errors import InputError

router = APIRouter(include_in_schema=False)
environment = jinja2.Environment(
    loader=jinja2.FileSystemLoader(API_DIR / "templates"),
    autoescape=True,  # every template, whatever its extension
    undefined=jinja2.StrictUndefined,
)
templates = Jinja2Templates(env=environment)
SESSION_SECONDS = 12 * 3600


def render(
    request: Request, name: str, user: User | None, code: int = 200, **context: Any
) -> HTMLResponse:
    return templates.TemplateResponse(
        request,
        name,
        {"user": user, "csrf": csrf_token(user) if user else "", **context},
        status_code=code,
        headers={"Cache-Control": "no-store"},
    )


def message(
    request: Request,
    user: User | None,
    heading: str,
    text: str,
    code: int = 200,
    *,
    link: str | None = None,
    link_text: str = "",
) -> HTMLResponse:
    return render(
        request,
        "message.html",
        user,
        code,
        heading=heading,
        message=text,
        link=link,
        link_text=link_text,
    )


def home_of(user: User) -> str:
    if user.role == "admin":
        return "/admin"
    return "/review" if user.role == "annotator" else "/docs"


@router.get("/")
def home(request: Request) -> Response:
    user = optional_user(request)
    return RedirectResponse(home_of(user) if user else "/login", status.HTTP_303_SEE_OTHER)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request) -> Response:
    user = optional_user(request)
    if user is not None:  # e.g. Back from the first item: no token to paste again
        return RedirectResponse(home_of(user), status.HTTP_303_SEE_OTHER)
    return render(request, "login.html", None, error=None)


@router.post("/login")
def login(request: Request, token: str = Form("")) -> Response:
    # No max_length here: FastAPI would answer a long paste with a JSON 422 quoting it, not
    # the login page. `authenticate` refuses anything longer than a token; the body limit
    # bounds the form.
    users = request.app.state.users
    user = users.authenticate(token.strip())
    if user is None:
        return render(request, "login.html", None, 401, error="That token is not valid.")
    response = RedirectResponse(home_of(user), status.HTTP_303_SEE_OTHER)
    # the cookie holds a server-side session id, never the token: logout revokes it
    response.set_cookie(
        SESSION_COOKIE,
        users.open_session(user, lasts_s=SESSION_SECONDS),
        max_age=SESSION_SECONDS,
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
        path="/",
    )
    return response


@router.post("/logout")
def logout(request: Request, csrf: str = Form("")) -> Response:
    user = optional_user(request)
    if user is not None and not hmac.compare_digest(csrf, csrf_token(user)):
        return message(request, user, "Not logged out", "The form was stale; try again.", 403)
    if user is not None and user.session is not None:
        request.app.state.users.close_session(user.session)  # the cookie is dead everywhere
    response = RedirectResponse("/login", status.HTTP_303_SEE_OTHER)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/review", response_class=HTMLResponse)
def review_page(request: Request) -> Response:
    user = optional_user(request)
    if user is None:
        return RedirectResponse("/login", status.HTTP_303_SEE_OTHER)
    if not user.can("annotator"):
        return message(request, user, "Not for you", "Reviewing needs the annotator role.", 403)
    if user.role == "admin":  # admins pass can("annotator"), but are handed no items
        note = (
            f"You are logged in as admin {user.name}. Reviewing needs the annotator role: "
            "this page hands items to annotators, and a decision made here would count as one "
            "of an item's annotators' in the agreement. To review items yourself, log in with "
            "an annotator account (synthgate users add NAME --role annotator). The admin page "
            "lists the items whose annotators split, for an admin to adjudicate."
        )
        return message(
            request,
            user,
            "Reviewing is for annotators",
            note,
            403,
            link="/admin",
            link_text="Go to the admin page",
        )
    task = request.app.state.queue.next_item(user.name)
    if task is None:
        done = "Nothing is waiting for you. Thank you!"
        return message(request, user, "All done", done, link="/review", link_text="Check again")
    public_id = request.app.state.item_ids.public(task.item_id)
    view = review_view(task, public_id, classes=task.fix_labels)
    return render(request, "review.html", user, view=view)


@router.get("/admin", response_class=HTMLResponse)
def admin_page(request: Request) -> Response:
    user = optional_user(request)
    if user is None:
        return RedirectResponse("/login", status.HTTP_303_SEE_OTHER)
    if not user.can("admin"):
        return message(request, user, "Not for you", "This page needs the admin role.", 403)
    state = request.app.state
    # the queue's numbers need no extra; the agreement tables need the review extra, and a
    # server without it still shows the rest, saying what to install
    exclude = sorted(set(request.query_params.getlist("exclude")))
    try:
        report, missing = agreement_or_missing(state.store, exclude=exclude)
    except InputError as error:  # a name no decision carries (a stale or edited link)
        report, missing = None, str(error)
    return render(
        request,
        "admin.html",
        user,
        stats=public_stats(state.queue.stats(), state.item_ids),
        agreement=agreement_tables(report) if report is not None else [],
        agreement_missing=missing,
        excluded=report.get("excluded") if report is not None else None,
        exclude=exclude,
        recent=recent_decisions(state.store, state.item_ids),
    )
