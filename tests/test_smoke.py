from tests.support import count_queries


def test_home_lists_published_events(client, make_event):
    make_event(title="Cyber crime & you")
    make_event(title="Hidden draft", status="draft")
    response = client.get("/")
    assert response.status_code == 200
    assert "Cyber crime &amp; you" in response.text
    assert "Hidden draft" not in response.text


def test_event_page(client, make_event, make_item, make_speaker):
    event = make_event()
    make_item(event, speakers=[make_speaker(), make_speaker("Julie Lloyd", "CRCSU")])
    with count_queries() as queries:
        response = client.get(f"/events/{event.slug}")
    assert response.status_code == 200, response.text
    assert "Tony Richardson" in response.text
    print(len(queries))
