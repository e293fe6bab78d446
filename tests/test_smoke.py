def test_openapi_served(client):
    r = client.get("/api/v1/openapi.json")
    assert r.status_code == 200
    assert r.json["openapi"].startswith("3.")


def test_stamp_roundtrip(shop):
    r = shop.api.post(f"/api/v1/vendor/loyalty/cards/{shop.stamp_card.card_number}/stamps",
                      json={"staff_pin": "4321"})
    assert r.status_code == 201, r.json
    assert r.json["card"]["stamps"] == 1
