"""What the assistant says: every customer-facing sentence is written here, from data."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date

from core.shop.catalog import Product
from core.shop.knowledge import Answer
from core.shop.orders import Order
from core.state.store import ProductRequest
from core.turn.messages import Button, Reply
from core.turn.recommendation import Evidence, Suggestion

HELP = (
    "I can suggest products, check an order (send its number), and answer questions about "
    "shipping, returns, payment and your account. Ask for a person at any time."
)
# The first message in a chat app, where the assistant may also sit in group chats.
CHAT_HELP = (
    "Hi! I'm the store's assistant. Tell me what you're looking for (\"a waterproof jacket "
    'under $100"), ask about an order ("where is order 48213?") or about shipping and '
    "returns. In groups, mention me or reply to my message."
)
TEXT_ONLY = "Sorry, I can only read text for now. Please type your question."

# Group chats, where each member has a conversation of their own.
SENT_PRIVATELY = "I've sent you the details in a direct message."
NOT_YOUR_BUTTON = (
    "These buttons belong to another member's conversation. Mention me to start your own."
)


def open_private_chat(link: str) -> str:
    """In a group, when the member has never opened a private chat with the assistant (which
    may then not write to them first): where to open one, so personal details stay private."""
    return (
        f"I can't send you a direct message yet. Please open a private chat with me at {link} "
        "and send your question there, so your details stay private."
    )


STATUS_WORDS = {
    "processing": "is being prepared in our warehouse",
    "shipped": "has shipped",
    "in_transit": "is on its way",
    "out_for_delivery": "is out for delivery today",
    "delivered": "was delivered",
    "cancelled": "was cancelled",
    "returned": "was returned to us",
    "refunded": "was returned and refunded",
}


# How category slugs read in a sentence.
CATEGORY_NAMES = {
    "headphones-audio": "headphones & audio",
    "hiking-camping": "hiking & camping gear",
    "running-fitness": "running & fitness gear",
    "phones-accessories": "phone accessories",
    "smart-home": "smart-home devices",
    "coffee-tea": "coffee & tea",
    "home-decor": "home decor",
    "bags-travel": "bags & travel gear",
    "toys-games": "toys & games",
}


def category_name(slug: str) -> str:
    return CATEGORY_NAMES.get(slug, slug.replace("-", " "))


def describe_request(request: ProductRequest) -> str:
    """A short phrase for what the customer asked: "waterproof outerwear under $100"."""
    words = [*request.attributes, *request.colors]
    if request.category:
        words.append(category_name(request.category))
    elif request.text:
        words.append(f"“{request.text[:60]}”")
    phrase = " ".join(words) or "your request"
    if request.budget_max is not None and request.budget_min is not None:
        phrase += f" between ${request.budget_min:,.0f} and ${request.budget_max:,.0f}"
    elif request.budget_max is not None:
        phrase += f" under ${request.budget_max:,.2f}".replace(".00", "")
    elif request.budget_min is not None:
        phrase += f" over ${request.budget_min:,.0f}"
    return phrase


def suggestions_reply(
    suggestions: Sequence[Suggestion],
    heading: str,
    thread_id: str | None,
    explainer: Callable[[Suggestion], str] | None = None,
) -> Reply:
    lines = [heading]
    buttons: list[Button] = []
    for position, suggestion in enumerate(suggestions, start=1):
        lines.append(f"{position}. {suggestion.title} — ${suggestion.price:,.2f}")
        lines.append(f"   {(explainer or template_explanation)(suggestion)}")
        key = f"{suggestion.item_id}:{position}"
        buttons += [
            Button(f"More like {position}", f"more:{key}"),
            Button(f"Not for me {position}", f"skip:{key}"),
            Button(f"Details {position}", f"details:{key}"),
        ]
    return Reply("\n".join(lines), tuple(buttons), thread_id)


def ideas_heading(request: ProductRequest) -> str:
    return f"Here are some ideas for {describe_request(request)}:"


def more_like_heading(title: str) -> str:
    return f"More like {title}:"


def rejected_heading(title: str) -> str:
    return f"Got it, no more {title}. Other options:"


def comes_in_heading(title: str, colours: Sequence[str]) -> str:
    return f"Yes, {title} comes in {' and '.join(colours)}:"


def not_in_colour(product: Product, wanted: Sequence[str]) -> str:
    """"X doesn't come in red (it comes in black, grey)"."""
    has = f" (it comes in {', '.join(product.colors)})" if product.colors else ""
    return f"{product.title} doesn't come in {' or '.join(wanted)}{has}"


def similar_in_colour(product: Product, wanted: Sequence[str]) -> str:
    return f"{not_in_colour(product, wanted)}. Similar options in {' or '.join(wanted)}:"


FOR_YOU_HEADING = "Picked for you, from what you've ordered before:"
POPULAR_HEADING = "Popular in our store right now:"
OPEN_QUESTION = (
    "Or tell me what you're shopping for (a product type, who it's for, or a budget) and I'll "
    "narrow it down."
)
JUST_OVER = 0.15  # a price at most this fraction over the budget is "just over" it


def nearest_heading(request: ProductRequest) -> str:
    return (
        f"Nothing in stock matches all of {describe_request(request)}. "
        "These come closest:"
    )


def misses(product: Product, request: ProductRequest) -> tuple[str, ...]:
    """What of the request a product does not meet, in words: "not insulated", "just over your
    budget ($163.99 against $150)". Empty when it meets everything asked."""
    found = [f"not {attribute}" for attribute in request.attributes
             if attribute not in product.attributes]
    price = f"${product.price:,.2f}"
    if request.budget_max is not None and product.price > request.budget_max:
        close = product.price <= request.budget_max * (1 + JUST_OVER)
        found.append(f"{'just ' if close else ''}over your budget ({price} against "
                     f"${request.budget_max:,.2f})".replace(".00)", ")"))
    if request.budget_min is not None and product.price < request.budget_min:
        found.append(f"under your minimum ({price} against ${request.budget_min:,.0f})")
    return tuple(found)


def with_misses(missed: Sequence[str], explanation: str) -> str:
    """A nearest alternative's line: what it misses first, then why it is suggested."""
    if not missed:
        return explanation
    note = "; ".join(missed)
    return f"{note[0].upper()}{note[1:]}. {explanation}"


def nothing_found(request: ProductRequest) -> str:
    hint = "a higher budget" if request.budget_max is not None else "fewer details"
    return (
        f"I couldn't find anything in stock for {describe_request(request)}. "
        f"Try {hint}, or tell me more about what it's for."
    )


def product_details(product: Product) -> str:
    maker = f" by {product.brand}" if product.brand else ""
    rated = (
        f"Rated {product.rating:.1f}/5 from {product.review_count:,} reviews. "
        if product.rating is not None and product.review_count
        else ""
    )
    lines = [f"{product.title}{maker} — ${product.price:,.2f}"]
    if product.description:
        lines.append(product.description)
    lines.append(rated + _stock(product))
    if product.colors:
        lines.append("Colours: " + ", ".join(product.colors) + ".")
    if product.sizes:
        lines.append("Sizes: " + ", ".join(product.sizes) + ".")
    if product.attributes:
        lines.append("Features: " + ", ".join(product.attributes) + ".")
    return "\n".join(lines)


# Words in a question that point at one field of a product.
_FIELD_WORDS: dict[str, tuple[str, ...]] = {
    "warranty": ("warranty", "guarantee", "broken", "repair"),
    "materials": ("material", "made of", "fabric", "ingredient", "leather", "cotton"),
    "sizes": ("size", "fit", "large", "small", "medium"),
    "colors": ("colour", "color", "black", "white", "blue", "red", "green"),
    "stock": ("stock", "available", "availability", "sold out", "when can"),
    "price": ("price", "cost", "how much", "expensive", "discount"),
}


def product_answer(product: Product, question: str) -> str:
    """Answer from the product's own fields only; fall back to its full details."""
    lowered = question.lower()
    for field, words in _FIELD_WORDS.items():
        if any(word in lowered for word in words):
            return f"{product.title}: {_field_fact(product, field)}"
    return product_details(product)


def _field_fact(product: Product, field: str) -> str:
    if field == "warranty":
        if product.warranty_months:
            return f"it comes with a {product.warranty_months}-month warranty."
        return "it has no manufacturer warranty beyond our 30-day return window."
    if field == "materials":
        if product.materials:
            return f"made of {product.materials}."
        return product.description or "the listing gives no materials."
    if field == "sizes":
        if product.sizes:
            return "available in sizes " + ", ".join(product.sizes) + "."
        return "it comes in one size."
    if field == "colors":
        if product.colors:
            return "available in " + ", ".join(product.colors) + "."
        return "it comes in one colour."
    if field == "stock":
        return _stock(product)
    return f"${product.price:,.2f}."


def _stock(product: Product) -> str:
    if product.stock <= 0:
        return "Currently out of stock."
    if product.stock < 5:
        return f"Only {product.stock} left in stock."
    return "In stock."


def order_status(order: Order) -> str:
    items = sum(item.quantity for item in order.items)
    head = f"Order #{order.id} ({items} item{'s' if items != 1 else ''}, ${order.total:,.2f})"
    text = f"{head} {STATUS_WORDS.get(order.status, 'has status ' + order.status)}"
    if order.status == "delivered" and order.delivered_at:
        text += f" on {_day(order.delivered_at)}"
    elif order.shipped_at and order.status in ("shipped", "in_transit", "out_for_delivery"):
        text += f"; it left our warehouse on {_day(order.shipped_at)}"
    text += "."
    if order.tracking_number and order.status not in ("cancelled", "refunded"):
        text += f" Carrier: {order.carrier}, tracking number {order.tracking_number}."
    if order.estimated_delivery and order.status in (
        "processing",
        "shipped",
        "in_transit",
        "out_for_delivery",
    ):
        text += f" Estimated delivery: {_day(order.estimated_delivery)}."
    return text


def orders_overview(orders: Sequence[Order]) -> str:
    lines = ["Your most recent orders:"]
    lines += [f"• {order_status(order)}" for order in orders[:3]]
    lines.append("Send an order number for more about one of them.")
    return "\n".join(lines)


def policy_answer(answer: Answer) -> str:
    return f"{answer.text}\n(From our help article “{answer.article.title}”.)"


NO_POLICY_ANSWER = (
    "I don't have a help article that answers that. I can connect you with a person: "
    'just say "talk to an agent".'
)
ORDER_NOT_FOUND = "I couldn't find order #{order_id}. Please check the number (it has 5 digits)."
ASK_ORDER_NUMBER = "Which order is it? Please send the order number (5 digits, in your email)."
GREETING = "Hi! " + HELP
THANKS = "You're welcome! Anything else I can help with?"
GOODBYE = "Thanks for stopping by. Bye!"
COMPLAINT = (
    "I'm sorry about that. Tell me what went wrong (and the order number if it's about an "
    'order) and I\'ll help, or say "agent" to reach a person.'
)
OUT_OF_SCOPE = "I can only help with our store here. " + HELP
UNKNOWN_BUTTON = "That button is no longer active. Tell me what you'd like instead."
EMPTY_MESSAGE = "I didn't get any text. " + HELP
TRUNCATED = "(Your message was very long, so I read only the first {limit:,} characters.)"
STORE_DOWN = (
    "Sorry, I can't reach my conversation memory right now, so I couldn't act on that. "
    "Please send it again in a minute."
)
NOT_HANDLED = (
    "Sorry, I was busy for too long and could not handle your last message. "
    "Please send it again."
)
TOO_FAST = (
    "You're sending messages faster than I can read them; I've skipped the last few. "
    "Please send again in a few seconds."
)
INTERNAL_ERROR = "Sorry, something went wrong on my side. Please try again."
RECOMMENDER_DOWN = (
    "Sorry, my product suggestions are unavailable for a moment. You can still ask about "
    "orders, shipping or returns, or try again shortly."
)
NO_AGENTS = (
    "I'd like to pass you to a person, but the support team can't be reached from this chat "
    "right now. You can email support@concierge-demo.example and we'll answer within a day."
)
ESCALATED = (
    "I've passed this to a person on our team; they'll reply right here. "
    "Your messages until then go straight to them."
)
RATED = "Thank you for the rating! I'm back to help whenever you need me."


# The terminal chat, where a number typed alone presses a button.
NO_BUTTONS = "There are no buttons to press right now (you typed {number})."
NO_SUCH_BUTTON = "There is no button {number}; choose 1-{count}."


def _day(value: date) -> str:
    return f"{value:%b} {value.day}, {value.year}"


# -- hand-over to a person --------------------------------------------------------------------

RESOLVED = (
    "Our support team has marked your request as resolved, and I'm back to help here. "
    "How would you rate the help you got?"
)
HANDED_BACK = (
    "Our support team has handed the conversation back to me, the store assistant. "
    "How would you rate the help you got from them?"
)
CSAT_LABELS = ("1 ☹", "2", "3", "4", "5 ☺")


def csat_buttons() -> tuple[tuple[str, str], ...]:
    """Rating buttons as (label, payload) pairs; the policy reads `csat:N`."""
    return tuple((label, f"csat:{n}") for n, label in enumerate(CSAT_LABELS, start=1))


def agent_joined(name: str | None) -> str:
    who = name or "A member of our support team"
    return f"{who} has picked up your request and will reply here."


def agent_message(name: str | None, text: str) -> str:
    """An agent's words as the customer sees them: clearly from a person, not the assistant."""
    return f"{name or 'Support'} (support team): {text}"


def still_waiting(minutes: int) -> str:
    return (
        f"An update: nobody from our team has picked up your request yet ({minutes} min so far), "
        "sorry about the wait. You're still in the queue and everything you write here reaches "
        "them. If it can wait, you can also email support@concierge-demo.example."
    )


# -- explanations of suggestions ---------------------------------------------------------------

def template_explanation(suggestion: Suggestion) -> str:
    """One line stating the suggestion's evidence and nothing else."""
    evidence = suggestion.evidence
    parts: list[str] = []
    if evidence.matched_attributes:
        parts.append(_join(evidence.matched_attributes))
    elif evidence.matched_terms:
        parts.append(f"matches {_join(evidence.matched_terms[:3])}")
    if evidence.similar_to:
        parts.append(f"similar to {evidence.similar_to}")
    elif evidence.similar_history:
        parts.append(f"like your {evidence.similar_history[0]}")
    if evidence.budget_max is not None and evidence.price <= evidence.budget_max:
        parts.append(f"under {_money(evidence.budget_max)}")
    rating = _rating(evidence)
    if rating:
        parts.append(rating)
    if not parts:
        return "A popular pick in our catalog."
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


def _rating(evidence: Evidence) -> str:
    if evidence.rating is None or not evidence.review_count:
        return ""
    return f"rated {evidence.rating:.1f}/5 by {evidence.review_count:,} reviewers"


def _money(amount: float) -> str:
    """$100 or $99.99: never rounded, so the figure is exactly the customer's."""
    return f"${amount:,.0f}" if float(amount).is_integer() else f"${amount:,.2f}"


def _join(words: tuple[str, ...] | list[str]) -> str:
    words = list(words)
    if len(words) <= 1:
        return "".join(words)
    return ", ".join(words[:-1]) + " and " + words[-1]


# -- the customer's account: linking, order privacy, data rights -------------------------------

ORDER_NOT_YOURS = (
    "I couldn't find order #{order_id} among the orders of your account. Please check the "
    "number, or send \"my orders\" to see your recent ones."
)
NO_ORDERS_YET = "Your account has no orders yet."
VERIFY_FOR_ORDERS = (
    "To show order details I first need to know it's you. Any of these works:\n"
    "• open the chat link on your account page on our website (or send \"link\" and the code "
    "it shows);\n"
    "• type the e-mail address on your account and I'll send you a 6-digit code;\n"
    "• send the order number with the e-mail address on that order, e.g. "
    "\"order 48213 you@example.com\"."
)
VERIFY_NO_MAIL = (
    "To show order details I first need to know it's you: open the chat link on your account "
    "page on our website (or send \"link\" and the code it shows), or send the order number "
    "with the e-mail address on that order, e.g. \"order 48213 you@example.com\"."
)
TOO_MANY_TRIES = (
    "That's too many tries for now. Please try again in {minutes} minutes, or say \"agent\" "
    "to reach a person."
)
LINK_WRONG = (
    "That link code isn't valid. Please open the chat link on your account page again to get "
    "a new one."
)
LINK_EXPIRED = (
    "That link code has expired or was used already. Please open the chat link on your "
    "account page again to get a new one."
)
CODE_SENT = (
    "If that's the address on an account, I've sent it a 6-digit code. Type the code here "
    "(it works for {minutes} minutes)."
)
CODE_WRONG = "That code isn't right. {left} tries left."
CODE_EXPIRED = 'That code has expired. Type your e-mail address again for a new one.'
NO_MAIL = (
    "I can't send e-mail codes right now. Please open the chat link on your account page, or "
    "send the order number with the e-mail address on that order."
)
ORDER_EMAIL_WRONG = (
    "That order number and e-mail address don't go together. Please check both (the address "
    "is the one the order confirmation went to)."
)
UNLINKED = "Done: this chat is no longer linked to your account."
NOT_LINKED = "This chat isn't linked to an account, so there's nothing to unlink."
DELETE_ASK = (
    "I can delete everything this chat keeps about you: our conversations, support tickets' "
    "transcripts, your feedback on suggestions, and the link to your account. Your orders "
    "stay with the shop. Delete it all?"
)
DELETE_YES, DELETE_NO = "Yes, delete my data", "No, keep it"
DELETE_KEPT = "Nothing was deleted."
DELETED = (
    "Done: I deleted {conversations} conversation{s}, {feedback} feedback event{fs} and the "
    "link to your account{tickets}. If you write again, I'll start afresh."
)
CODE_EMAIL_SUBJECT = "Your code to link the store's chat assistant"


def linked(name: str) -> str:
    first = name.split()[0] if name.strip() else "there"
    return (
        f"Thanks, {first}: this chat is now linked to your account, so I can show your orders "
        'and suggest things from your history. Say "unlink" to undo it.'
    )


def order_opened(order: Order) -> str:
    return f"Thanks, that matches. {order_status(order)}"


def too_many_tries(seconds: float) -> str:
    return TOO_MANY_TRIES.format(minutes=max(1, round(seconds / 60)))


def deleted(counts: dict[str, int]) -> str:
    conversations = counts.get("conversations", 0)
    feedback = sum(value for name, value in counts.items() if name.startswith("feedback."))
    tickets = counts.get("tickets", 0)
    return DELETED.format(
        conversations=conversations, s="" if conversations == 1 else "s",
        feedback=feedback, fs="" if feedback == 1 else "s",
        tickets=f", and anonymised {tickets} support ticket{'s' if tickets != 1 else ''}"
        if tickets else "",
    )


def code_email(name: str, code: str, minutes: int) -> str:
    first = name.split()[0] if name.strip() else "there"
    return (
        f"Hi {first},\n\nyour code is {code}. Type it in the chat with our assistant to link "
        f"the chat to your account. It works for {minutes} minutes.\n\n"
        "If you didn't ask for it, ignore this e-mail: nothing changes without the code.\n"
    )
