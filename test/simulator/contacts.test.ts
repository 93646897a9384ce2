import { describe, expect, it } from 'vitest';
import { call, postContacts, simulator } from './http.js';

describe('POST /api/public/contacts', () => {
  it('answers the documented curl example with imported, skipped and the list id', async () => {
    const sim = await simulator();
    // curl -X POST $URL/api/public/contacts -H 'Authorization: Bearer as_test_key' \
    //   -H 'Content-Type: application/json' -d '{"contacts":[...],"list":"API leads"}'
    const response = await fetch(`${sim.url}/api/public/contacts`, {
      method: 'POST',
      headers: { Authorization: 'Bearer as_test_key', 'Content-Type': 'application/json' },
      body: '{"contacts":[{"phone":"+15551234567","first_name":"Jo","source":"acme.com"}],"list":"API leads"}',
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    const body = (await response.json()) as { list_id: string };
    expect(body).toEqual({ ok: true, imported: 1, skipped: 0, list_id: expect.any(String) });
    expect(sim.store.listByName('API leads')?.id).toBe(body.list_id);
    expect(sim.store.contact('+15551234567')).toEqual({
      phone: '+15551234567',
      first_name: 'Jo',
      source: 'acme.com',
      list_ids: [body.list_id],
      writes: 1,
    });
  });

  describe('takes the three documented body forms', () => {
    it('one contact object', async () => {
      const sim = await simulator();
      const reply = await postContacts(sim, { phone: '+15550000001', last_name: 'One' });
      expect(reply.body).toEqual({ ok: true, imported: 1, skipped: 0 });
      expect(sim.store.contact('+15550000001')).toMatchObject({ last_name: 'One', list_ids: [] });
    });

    it('a bare array of contacts', async () => {
      const sim = await simulator();
      const reply = await postContacts(sim, [{ phone: '+15550000001' }, { phone: '+15550000002' }]);
      expect(reply.body).toEqual({ ok: true, imported: 2, skipped: 0 });
      expect(sim.store.contacts().map((contact) => contact.phone)).toEqual(['+15550000001', '+15550000002']);
    });

    it('{contacts} without a list target', async () => {
      const sim = await simulator();
      const reply = await postContacts(sim, { contacts: [{ phone: '+15550000001' }] });
      expect(reply.body).toEqual({ ok: true, imported: 1, skipped: 0 });
      expect(sim.store.lists()).toEqual([]);
    });
  });

  describe('list targets', () => {
    it('finds a list by name or creates it, answering the same id each time', async () => {
      const sim = await simulator();
      const first = await postContacts(sim, { contacts: [{ phone: '+15550000001' }], list: 'Leads' });
      const second = await postContacts(sim, { contacts: [{ phone: '+15550000002' }], list: 'Leads' });
      const other = await postContacts(sim, { contacts: [{ phone: '+15550000001' }], list: 'Customers' });
      const leadsId = (first.body as { list_id: string }).list_id;
      expect((second.body as { list_id: string }).list_id).toBe(leadsId);
      expect((other.body as { list_id: string }).list_id).not.toBe(leadsId);
      expect(sim.store.lists()).toEqual([
        { id: leadsId, name: 'Leads', size: 2 },
        { id: (other.body as { list_id: string }).list_id, name: 'Customers', size: 1 },
      ]);
      expect(sim.store.contact('+15550000001')?.list_ids).toHaveLength(2);
    });

    it('adds to an existing list by list_id', async () => {
      const sim = await simulator();
      const created = await postContacts(sim, { contacts: [{ phone: '+15550000001' }], list: 'Leads' });
      const listId = (created.body as { list_id: string }).list_id;
      const reply = await postContacts(sim, { contacts: [{ phone: '+15550000002' }], list_id: listId });
      expect(reply.body).toEqual({ ok: true, imported: 1, skipped: 0, list_id: listId });
      expect(sim.store.list(listId)?.size).toBe(2);
    });

    it('knows the lists given at start', async () => {
      const sim = await simulator({ lists: [{ id: 'lst_odoo', name: 'Odoo contacts' }] });
      const reply = await postContacts(sim, { contacts: [{ phone: '+15550000001' }], list_id: 'lst_odoo' });
      expect(reply.status).toBe(200);
      expect(sim.store.contact('+15550000001')?.list_ids).toEqual(['lst_odoo']);
      const byName = await postContacts(sim, {
        contacts: [{ phone: '+15550000002' }],
        list: 'Odoo contacts',
      });
      expect(byName.body).toMatchObject({ list_id: 'lst_odoo' });
    });

    it('answers 400 for an unknown list_id and stores nothing', async () => {
      const sim = await simulator();
      const reply = await postContacts(sim, {
        contacts: [{ phone: '+15550000001' }],
        list_id: 'lst_missing',
      });
      expect(reply.status).toBe(400);
      expect(reply.body).toEqual({ ok: false, error: 'list_id not found: lst_missing' });
      expect(sim.store.size).toBe(0);
    });

    it('answers 400 when both list and list_id are sent', async () => {
      const sim = await simulator();
      const reply = await postContacts(sim, {
        contacts: [{ phone: '+15550000001' }],
        list: 'A',
        list_id: 'B',
      });
      expect(reply.status).toBe(400);
      expect(reply.body).toEqual({ ok: false, error: 'Send either list or list_id, not both' });
    });
  });

  describe('upsert by phone', () => {
    it('updates an existing phone instead of duplicating it, keeping fields the update left out', async () => {
      const sim = await simulator();
      await postContacts(sim, { phone: '+15550000001', first_name: 'Jo', last_name: 'Smith', source: 'crm' });
      const reply = await postContacts(sim, { phone: '+15550000001', first_name: 'Joanna' });
      expect(reply.body).toEqual({ ok: true, imported: 1, skipped: 0 });
      expect(sim.store.contacts()).toEqual([
        {
          phone: '+15550000001',
          first_name: 'Joanna',
          last_name: 'Smith',
          source: 'crm',
          list_ids: [],
          writes: 2,
        },
      ]);
    });

    it('stores an empty string as sent (only a field left out keeps its value)', async () => {
      const sim = await simulator();
      await postContacts(sim, { phone: '+15550000001', last_name: 'Smith' });
      await postContacts(sim, { phone: '+15550000001', last_name: '' });
      expect(sim.store.contact('+15550000001')?.last_name).toBe('');
    });

    it('counts a phone repeated in one request as skipped, the later contact winning, written once', async () => {
      const sim = await simulator();
      const reply = await postContacts(sim, {
        contacts: [
          { phone: '+15550000001', first_name: 'Old', source: 'a' },
          { phone: '+15550000002' },
          { phone: '5550000001', first_name: 'New' },
        ],
      });
      expect(reply.body).toEqual({ ok: true, imported: 2, skipped: 1 });
      expect(sim.store.contact('+15550000001')).toMatchObject({ first_name: 'New', source: 'a', writes: 1 });
    });

    it('ignores contact properties Verbose does not document', async () => {
      const sim = await simulator();
      await postContacts(sim, { phone: '+15550000001', email: 'jo@example.com', custom_fields: { a: 1 } });
      expect(sim.store.contact('+15550000001')).toEqual({ phone: '+15550000001', list_ids: [], writes: 1 });
    });
  });

  describe('phone numbers', () => {
    it('stores US 10- and 11-digit numbers as E.164', async () => {
      const sim = await simulator();
      const reply = await postContacts(sim, [
        { phone: '5551234567' },
        { phone: '15557654321' },
        { phone: '+447911123456' },
      ]);
      expect(reply.body).toEqual({ ok: true, imported: 3, skipped: 0 });
      expect(sim.store.contacts().map((contact) => contact.phone)).toEqual([
        '+15551234567',
        '+15557654321',
        '+447911123456',
      ]);
    });

    it.each([
      '555-123-4567',
      '(555) 123 4567',
      '25551234567',
      '555123456',
      '+05551234567',
      '+1234567890123456',
      ' +15551234567',
      'call me',
    ])('answers the whole request 400 for %j, naming it, and stores nothing', async (phone) => {
      const sim = await simulator();
      const reply = await postContacts(sim, {
        contacts: [{ phone: '+15550000001' }, { phone }, { phone: '+15550000002' }],
        list: 'Never created',
      });
      expect(reply.status).toBe(400);
      expect(reply.body).toEqual({ ok: false, error: `Invalid phone number: ${phone}` });
      expect(sim.store.size).toBe(0);
      expect(sim.store.lists()).toEqual([]);
    });

    it('answers 400 for a phone that is not a string', async () => {
      const sim = await simulator();
      const reply = await postContacts(sim, [{ phone: 5551234567 }]);
      expect(reply.status).toBe(400);
      expect(reply.body).toEqual({ ok: false, error: 'Invalid phone number: 5551234567' });
    });

    it('answers 400 for a contact without a phone', async () => {
      const sim = await simulator();
      const reply = await postContacts(sim, [{ phone: '+15550000001' }, { first_name: 'Jo' }]);
      expect(reply.status).toBe(400);
      expect(reply.body).toEqual({ ok: false, error: 'phone is required' });
      expect(sim.store.size).toBe(0);
    });
  });

  describe('malformed requests', () => {
    it('answers 400 "Invalid JSON body" for a body that is not JSON, or none', async () => {
      const sim = await simulator();
      for (const text of ['{"phone":', '']) {
        const reply = await call(sim, 'POST', '/api/public/contacts', { text });
        expect(reply.status).toBe(400);
        expect(reply.body).toEqual({ ok: false, error: 'Invalid JSON body' });
      }
    });

    it.each([
      [{ phone: '+15550000001', first_name: null }, 'first_name must be a string, got null'],
      [{ phone: '+15550000001', source: 7 }, 'source must be a string, got 7'],
      [{ contacts: 'nope' }, 'contacts must be an array'],
      [{ contacts: [] }, 'contacts must not be empty'],
      [[], 'contacts must not be empty'],
      [['+15550000001'], 'Invalid contact: "+15550000001"'],
      [{ contacts: [{ phone: '+15550000001' }], list: '' }, 'list must be a non-empty string (a list name)'],
      ['+15550000001', 'Body must be a contact, an array of contacts or {contacts: [...]}'],
    ])('answers 400 for %j', async (json, error) => {
      const sim = await simulator();
      const reply = await postContacts(sim, json);
      expect(reply.status).toBe(400);
      expect(reply.body).toEqual({ ok: false, error });
      expect(sim.store.size).toBe(0);
    });
  });
});
