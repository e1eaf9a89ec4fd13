import logging

import pytest

from components.privacy import log_masking
from components.privacy.pii import PIIMasker


@pytest.fixture
def root_handler():
    handler = logging.StreamHandler()
    handler.records = []
    handler.emit = handler.records.append  # keep formatted records in memory
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler
    root.removeHandler(handler)


def test_personal_data_in_any_logger_is_masked(root_handler):
    log_masking.install(PIIMasker("log-test-key-0123456789"))
    log_masking.install()  # idempotent: one filter per handler
    assert sum(isinstance(f, log_masking.PIILogFilter) for f in root_handler.filters) == 1
    logging.getLogger("rasa.core.processor").warning(
        "Received user message '%s'", "call me on 13812345678"
    )
    logging.getLogger("kefu").warning("clean %d", 5)
    first, second = (r.getMessage() for r in root_handler.records)
    assert "13812345678" not in first and "[PHONE_" in first
    assert second == "clean 5"


def test_json_escaped_chinese_is_checked_too(root_handler):
    log_masking.install(PIIMasker("log-test-key-0123456789"))
    event = '{"parse_data_text": "\\u6211\\u53eb\\u738b\\u4f1f\\u82b3", "event": "x"}'
    logging.getLogger("rasa.core.processor").warning(event)
    message = root_handler.records[-1].getMessage()
    assert "\\u738b" not in message and "王伟芳" not in message and "[NAME_" in message


def test_names_without_a_cue_are_masked_with_the_learned_recogniser():
    from components.privacy.tagger import default_tagger

    masker = PIIMasker("log-test-key-0123456789", tagger=default_tagger())
    log_filter = log_masking.PIILogFilter(masker)
    record = logging.LogRecord(
        "rasa.core.processor",
        logging.DEBUG,
        __file__,
        1,
        "Received user message '%s'",
        ("hi, Sara Schwarz here, where is my parcel",),
        None,
    )
    assert log_filter.filter(record)
    message = record.getMessage()
    assert "Sara" not in message and "Schwarz" not in message and "[NAME_" in message
    # the learned recogniser reads the quoted parts only: a program's own words stay
    for line in ("channels.rest.turn_failed sender=x error=Y", "conversation ended after 3 turns"):
        record = logging.LogRecord("kefu", logging.INFO, __file__, 1, line, (), None)
        log_filter.filter(record)
        assert record.getMessage() == line
    # a name already found in a customer's message is masked wherever it reappears
    masker.mask("the order for Ava Novak never arrived")
    record = logging.LogRecord(
        "rasa", logging.DEBUG, __file__, 1, "[state 4] user text: the order for Ava Novak", (), None
    )
    log_filter.filter(record)
    assert "Ava Novak" not in record.getMessage()


def test_own_service_addresses_stay_readable_in_logs_public_ones_are_masked(root_handler):
    masker = PIIMasker("log-test-key-0123456789")
    log_masking.install(masker)
    logger = logging.getLogger("rasa.core.actions.action")
    for address in (
        "127.0.0.1",
        "127.3.2.1",
        "10.1.2.3",
        "172.16.0.9",
        "172.31.255.1",
        "192.168.1.20",
    ):
        logger.error("Failed to run custom action: http://%s:5055/webhook refused", address)
        assert address in root_handler.records[-1].getMessage()
    for address in ("8.8.8.8", "172.32.0.1", "192.169.1.1", "203.0.113.9", "11.0.0.1"):
        logger.warning("Received user message 'my ip is %s'", address)
        message = root_handler.records[-1].getMessage()
        assert address not in message and "[IP_" in message
    # stored customer text is masked as before: the rule is the log filter's, not the recogniser's
    assert "192.168.1.20" not in masker.mask("my router is 192.168.1.20")
