async fetchUser(id: number): Promise<User> {
  return await this.api.get<User>(`/users/${id}`);
}
