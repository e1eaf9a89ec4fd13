def test_rasa_model_ids_are_not_mistaken_for_phone_numbers():
    from components.privacy.event_masking import mask_event
    from components.privacy.pii import PIIMasker

    event = {
        "event": "user",
        "text": "hello",
        "metadata": {
            "model_id": "91d5a2b9375943949b15148988369fa4",
            "assistant_id": "kefu-demo-shop",
            "phone": "13812345678",
        },
    }
    masked = mask_event(PIIMasker("k" * 32), event, "ann")
    assert masked["metadata"]["model_id"] == "91d5a2b9375943949b15148988369fa4"
    assert "13812345678" not in str(masked)
