from actions.demo_shop.tickets import TicketStore


def test_tickets_are_persisted_per_sender(kefu_home):
    store = TicketStore()
    first = store.create("alice", "request", "request_human", "KF100234")
    store.create("bob", "fallback", "nlu_fallback", None)
    again = TicketStore()  # a new process sees the same tickets
    tickets = again.for_sender("alice")
    assert [t.ticket_id for t in tickets] == [first.ticket_id]
    assert tickets[0].order_id == "KF100234" and tickets[0].status == "open"
    assert first.ticket_id.startswith("T-")
